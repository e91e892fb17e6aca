package engine_test

import (
	"testing"
	"time"

	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/testenv"
)

// Two clusters running the same stack share its renders: the second
// cluster's plan renders nothing its twin rendered, and deploys Ready.
// argo-rollouts' manifest is mostly CRDs, whose schemas say "type: date":
// words that only matter inside template actions.
func TestClustersShareRenders(t *testing.T) {
	t.Parallel()
	renders := engine.NewRenderCache(0)
	var engines []*engine.Engine
	for range 2 {
		cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
		e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute, Renders: renders})
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
	}
	st := profileStack(t, "fleet", "add-on", "hello addon hello-universe 1.2.0", "spegel addon spegel 0.0.30", "rollouts addon argo-rollouts 1.2.1")
	layers := int64(len(st.Layers))

	deploy(t, engines[0], st)
	if hits, misses := renders.Stats(); hits != 0 || misses != layers {
		t.Errorf("first cluster: %d hits, %d misses, want 0 and %d", hits, misses, layers)
	}
	_, res := deploy(t, engines[1], st)
	if hits, misses := renders.Stats(); hits != layers || misses != layers {
		t.Errorf("second cluster: %d hits, %d misses, want %d and %d", hits, misses, layers, layers)
	}
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady {
			t.Errorf("second cluster, layer %s: %s %s", l.Name, l.Phase, l.Message)
		}
	}
}
