// Package capi carries the `local` ClusterClass, which `strata up --capi`
// applies as it is, so that the file users read is the one that runs.
package capi

import _ "embed"

// ClusterClassLocal is clusterclass-local.yaml.
//
//go:embed clusterclass-local.yaml
var ClusterClassLocal []byte
