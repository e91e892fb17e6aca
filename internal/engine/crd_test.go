package engine_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"strata.dev/strata/internal/engine"
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
	st := inlineStack("crds", "widgets", inline)
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
	st := inlineStack("typo", "web", inline)
	_, res := deploy(t, e, st)
	if l := phases(res)["web"]; l.Phase != engine.PhaseFailed || !strings.Contains(l.Message, ".spec.replicaz: field not declared in schema") {
		t.Fatalf("web: %s %q, want Failed naming spec.replicaz", l.Phase, l.Message)
	}
	if _, err := cs.AppsV1().Deployments("web").Get(t.Context(), "web", metav1.GetOptions{}); err == nil {
		t.Error("the deployment with an unknown field was created")
	}
}
