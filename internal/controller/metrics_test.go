package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
)

// strata_layers shows each cluster's layers by the phases they are in now:
// a phase no layer is in any more goes, another cluster's series stay, and
// a deleted cluster's go.
func TestLayersByPhaseFollowTheCluster(t *testing.T) {
	cluster := func(name string, phases ...string) *v1.Cluster {
		c := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "metrics-test", Name: name}}
		for _, p := range phases {
			c.Status.Layers = append(c.Status.Layers, v1.LayerStatus{Phase: p})
		}
		return c
	}
	shown := func(name string) map[string]float64 {
		t.Helper()
		got := map[string]float64{}
		ch := make(chan prometheus.Metric, 1024)
		layersByPhase.Collect(ch)
		close(ch)
		for m := range ch {
			var pb dto.Metric
			if err := m.Write(&pb); err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{}
			for _, l := range pb.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == "metrics-test" && labels["cluster"] == name {
				got[labels["phase"]] = pb.GetGauge().GetValue()
			}
		}
		return got
	}
	want := func(name string, phases map[string]float64) {
		t.Helper()
		got := shown(name)
		if len(got) != len(phases) {
			t.Fatalf("%s: strata_layers by phase %v, want %v", name, got, phases)
		}
		for phase, n := range phases {
			if got[phase] != n {
				t.Fatalf("%s: strata_layers by phase %v, want %v", name, got, phases)
			}
		}
	}

	observe(cluster("a", "Installing", "Ready"))
	observe(cluster("b", "Ready"))
	want("a", map[string]float64{"Installing": 1, "Ready": 1})
	observe(cluster("a", "Ready", "Ready"))
	want("a", map[string]float64{"Ready": 2})
	want("b", map[string]float64{"Ready": 1})
	forget(cluster("a"))
	want("a", map[string]float64{})
	want("b", map[string]float64{"Ready": 1})
}
