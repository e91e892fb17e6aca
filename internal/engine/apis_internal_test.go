package engine

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"strata.dev/strata/internal/testenv"
)

// Clusters that serve the same APIs share one mapper of them; one that
// gains a kind has a mapper of its own once refreshed, and the others do
// not see its kind.
func TestClustersServingTheSameAPIsShareTheirMapper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var configs []*rest.Config
	var engines []*Engine
	for _, name := range []string{"first", "second"} {
		cfg := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: name}).RESTConfig()
		e, err := New(Options{RESTConfig: cfg, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		configs, engines = append(configs, cfg), append(engines, e)
	}
	deployment := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gadget := schema.GroupKind{Group: "example.strata.dev", Kind: "Gadget"}
	apis := func(e *Engine) *apiMappings {
		t.Helper()
		if _, err := e.getter.mapper.RESTMapping(deployment, "v1"); err != nil {
			t.Fatal(err)
		}
		m, err := e.getter.mapper.current()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if apis(engines[0]) != apis(engines[1]) {
		t.Fatal("two clusters serving the same APIs have a mapper each")
	}

	testenv.CreateCRD(t, configs[1], "example.strata.dev", "Gadget", "gadgets")
	// What the engine's keeper does when the cluster's APIs changed.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		engines[1].Refresh()
		_, err := engines[1].getter.mapper.RESTMapping(gadget, "v1")
		return err == nil, nil
	}); err != nil {
		t.Fatal("the second cluster's new kind is never mapped")
	}
	if apis(engines[0]) == apis(engines[1]) {
		t.Fatal("a cluster that gained a kind still shares the mapper of one that did not")
	}
	if _, err := engines[0].getter.mapper.RESTMapping(gadget, "v1"); !meta.IsNoMatchError(err) {
		t.Fatalf("the first cluster maps the second's kind: %v", err)
	}
}
