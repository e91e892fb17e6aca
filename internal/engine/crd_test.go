package engine_test

import (
	"strings"
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

// A field the API does not know fails its layer with the field's name:
// the API server validates strictly what Helm applies.
func TestUnknownFieldFailsTheLayer(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	inline := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicaz: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.k8s.io/pause:3.10}]}
`
	st := &stack.Stack{Cluster: "typo", Layers: []stack.Layer{{
		Name: "web", Profile: "typo", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourceManifests,
		Namespace: "web", ReleaseName: "web", Values: map[string]any{},
		Spec: v1.Layer{Name: "web", Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: inline}},
	}}}
	_, res := deploy(t, e, st)
	if l := phases(res)["web"]; l.Phase != engine.PhaseFailed || !strings.Contains(l.Message, ".spec.replicaz: field not declared in schema") {
		t.Fatalf("web: %s %q, want Failed naming spec.replicaz", l.Phase, l.Message)
	}
	if _, err := cs.AppsV1().Deployments("web").Get(t.Context(), "web", metav1.GetOptions{}); err == nil {
		t.Error("the deployment with an unknown field was created")
	}
}
