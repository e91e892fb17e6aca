// Package flowcontrol embeds the API Priority and Fairness objects that
// give Strata's agents a share of the management plane's API server of
// their own, so that `strata up` applies the ones the binary was built
// with. The Helm chart carries the same objects (templates/flowcontrol.yaml).
package flowcontrol

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Manifests are flowcontrol.yaml: a PriorityLevelConfiguration and two
// FlowSchemas.
//
//go:embed flowcontrol.yaml
var Manifests []byte

// Apply applies Manifests to the API server of cfg (server-side apply:
// again, it changes nothing).
func Apply(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	for i, doc := range bytes.Split(Manifests, []byte("\n---\n")) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return fmt.Errorf("config/flowcontrol document %d: %w", i+1, err)
		}
		//nolint:staticcheck // client.Apply with a whole object, as shipped.
		if err := c.Patch(ctx, obj, client.Apply, client.FieldOwner("strata"), client.ForceOwnership); err != nil {
			return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}
