package engine_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
)

// A layer that holds a CRD and a custom resource of it applies: the CRD is
// established first. The layer is inline manifests, verbatim.
func TestInlineManifestsWithCRDAndCustomResource(t *testing.T) {
	t.Parallel()
	cp, e, _ := cluster(t)
	inline := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.strata.dev
spec:
  group: example.strata.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
---
apiVersion: example.strata.dev/v1
kind: Widget
metadata:
  name: first
spec:
  size: 3
`
	st := &stack.Stack{Cluster: "crds", Layers: []stack.Layer{{
		Name: "widgets", Profile: "crds", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourceManifests,
		Namespace: "widgets", ReleaseName: "widgets", Values: map[string]any{},
		Spec: v1.Layer{Name: "widgets", Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: inline}},
	}}}
	_, res := deploy(t, e, st)
	if l := phases(res)["widgets"]; l.Phase != engine.PhaseReady || l.Objects != 2 {
		t.Fatalf("widgets: %s (%d objects) %s", l.Phase, l.Objects, l.Message)
	}
	dyn := dynamic.NewForConfigOrDie(cp.RESTConfig())
	w, err := dyn.Resource(schema.GroupVersionResource{Group: "example.strata.dev", Version: "v1", Resource: "widgets"}).Namespace("widgets").Get(t.Context(), "first", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("custom resource: %v", err)
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
		t.Errorf("size = %d", size)
	}
}
