// Package flowcontrol embeds the API Priority and Fairness objects that
// give Strata's agents a share of the management plane's API server of
// their own, so that `strata up` applies the ones the binary was built
// with. The Helm chart carries the same objects (templates/flowcontrol.yaml).
package flowcontrol

import _ "embed"

// Manifests are flowcontrol.yaml: a PriorityLevelConfiguration and two
// FlowSchemas.
//
//go:embed flowcontrol.yaml
var Manifests []byte
