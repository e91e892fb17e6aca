package agent

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// The agent's mapper answers for the kinds it uses without a request, and
// asks discovery for any other kind. Pure mapping logic: the server here
// only counts that discovery was asked, and refuses it.
func TestKnownFirstMapsTheAgentsKindsWithoutAsking(t *testing.T) {
	var asked atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "no discovery here", http.StatusServiceUnavailable)
	}))
	defer server.Close()
	cfg := &rest.Config{Host: server.URL}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := newKnownFirst(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}

	for _, gvk := range knownKinds {
		for _, kind := range []string{gvk.Kind, gvk.Kind + "List"} {
			m, err := mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: kind}, gvk.Version)
			if err != nil {
				t.Fatalf("%s %s: %v", gvk.GroupVersion(), kind, err)
			}
			if m.Scope.Name() != "namespace" {
				t.Errorf("%s %s: scope %s, want namespace", gvk.GroupVersion(), kind, m.Scope.Name())
			}
		}
	}
	for gvk, want := range map[schema.GroupVersionKind]string{
		{Group: "strata.dev", Version: "v1alpha1", Kind: "PackRegistry"}: "packregistries",
		{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}:     "leases",
		{Group: "", Version: "v1", Kind: "Secret"}:                       "secrets",
	} {
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		if m.Resource.Resource != want {
			t.Errorf("%s maps to resource %q, want %q", gvk, m.Resource.Resource, want)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the agent's own kinds cost %d discovery requests, want none", n)
	}

	if _, err := mapper.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "v1"); err == nil {
		t.Fatal("a Deployment mapped though discovery refused every request")
	}
	if asked.Load() == 0 {
		t.Fatal("a kind the agent does not know did not go to discovery")
	}
}
