package controller

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
)

// Metrics beside controller-runtime's own (reconcile duration and errors
// per controller), served on the manager's metrics endpoint.
var (
	layersByPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_layers",
		Help: "Layers of the managed clusters, by phase.",
	}, []string{"namespace", "cluster", "phase"})
	updatesPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_cluster_updates_pending",
		Help: "1 while a cluster has a plan waiting for approval.",
	}, []string{"namespace", "cluster"})
	driftRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_drift_repairs_total",
		Help: "Objects changed by hand that were put back.",
	})
	workloadRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_workload_requests_total",
		Help: "API requests the manager made to workload clusters, by kind: read, dry-run (drift checks) or write.",
	}, []string{"kind"})
	rolloutClusters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_rollout_clusters",
		Help: "Clusters of each profile version's roll-out, by state.",
	}, []string{"namespace", "profile", "version", "state"})
	rollbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_rollout_rollbacks_total",
		Help: "Clusters returned by a roll-out to the version they last ran healthy.",
	})
)

// observeRollout publishes a roll-out's clusters by state.
func observeRollout(p *v1.ClusterProfile, st *v1.RolloutStatus) {
	labels := prometheus.Labels{"namespace": p.Namespace, "profile": p.Spec.Name, "version": p.Spec.Version}
	rolloutClusters.DeletePartialMatch(labels)
	counts := map[v1.RolloutClusterState]int{}
	for _, w := range st.Waves {
		for _, c := range w.Clusters {
			counts[c.State]++
		}
	}
	for state, n := range counts {
		rolloutClusters.WithLabelValues(p.Namespace, p.Spec.Name, p.Spec.Version, string(state)).Set(float64(n))
	}
}

// countRequests counts a workload cluster's requests into
// strata_workload_requests_total: a resync with nothing to do must write
// nothing, and this is how an operator sees it.
func countRequests(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		workloadRequests.WithLabelValues(engine.RequestKind(req)).Inc()
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// registerMetrics adds Strata's metrics to controller-runtime's registry,
// a process-wide one, once however many managers a process starts.
var registerMetrics sync.Once

// publishedPhases holds, per cluster ("namespace/name"), the layer phases
// observe last published, so that a phase no cluster layer is in any more
// is deleted by its labels. DeletePartialMatch would scan every cluster's
// series on each reconcile, a cost that grows with the fleet: more than a
// quarter of a load test's CPU at 5,000 hollow agents, which share one
// registry, as a manager's push-mode clusters do.
var publishedPhases sync.Map

// observe publishes a cluster's layers by phase and pending updates.
func observe(c *v1.Cluster) {
	key := c.Namespace + "/" + c.Name
	counts := map[string]int{}
	for _, l := range c.Status.Layers {
		counts[l.Phase]++
	}
	if old, ok := publishedPhases.Load(key); ok {
		for _, phase := range old.([]string) {
			if _, still := counts[phase]; !still {
				layersByPhase.DeleteLabelValues(c.Namespace, c.Name, phase)
			}
		}
	}
	phases := make([]string, 0, len(counts))
	for phase, n := range counts {
		layersByPhase.WithLabelValues(c.Namespace, c.Name, phase).Set(float64(n))
		phases = append(phases, phase)
	}
	publishedPhases.Store(key, phases)
	pending := 0.0
	if c.Status.PendingPlan != nil {
		pending = 1
	}
	updatesPending.WithLabelValues(c.Namespace, c.Name).Set(pending)
}

// forget drops a deleted cluster's series.
func forget(c *v1.Cluster) {
	if old, ok := publishedPhases.LoadAndDelete(c.Namespace + "/" + c.Name); ok {
		for _, phase := range old.([]string) {
			layersByPhase.DeleteLabelValues(c.Namespace, c.Name, phase)
		}
	}
	updatesPending.DeleteLabelValues(c.Namespace, c.Name)
}
