package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/testenv"
)

// BenchmarkRollout measures, on six real clusters, what waves cost: the
// time for a new version to reach every cluster all at once and in three
// waves with no soak (the ratio is the waves' overhead), the management
// API requests a roll-out adds per cluster, and the time from a canary
// failing its health gate to it running its last good version Ready.
func BenchmarkRollout(b *testing.B) {
	mgmt, c := emptyManagementPlane(b, controller.SharedNamespace, "fleet")
	var requests atomic.Int64
	managerCfg := rest.CopyConfig(mgmt)
	managerCfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			requests.Add(1)
			return next.RoundTrip(req)
		})
	})
	startManager(b, managerCfg, 0)
	ctx := context.Background()
	must(b, c.Create(ctx, helloProfile("1.0.0", "1")))
	rings := []string{"canary", "early", "early", "", "", ""}
	var clusters []*v1.Cluster
	for i, ring := range rings {
		name := fmt.Sprintf("site-%d", i)
		cp := testenv.WorkloadCluster(b, testenv.ClusterOptions{Name: name, Nodes: 1})
		cl := importCluster(b, c, "fleet", name, cp.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.x"})
		if ring != "" {
			got := getCluster(b, c, cl)
			patch := client.MergeFrom(got.DeepCopy())
			got.Labels = map[string]string{"ring": ring}
			must(b, c.Patch(ctx, got, patch))
		}
		clusters = append(clusters, cl)
	}
	on := func(version string, which []*v1.Cluster) func() (bool, string) {
		return func() (bool, string) {
			done := 0
			for _, cl := range which {
				got := getCluster(b, c, cl)
				if got.Status.Phase == v1.ClusterReady && len(got.Status.Profiles) == 1 && got.Status.Profiles[0].Version == version && got.Status.ObservedGeneration == got.Generation {
					done++
				}
			}
			return done == len(which), fmt.Sprintf("%d of %d Ready on %s", done, len(which), version)
		}
	}
	waitUntil(b, "every cluster on 1.0.0", 10*time.Minute, on("1.0.0", clusters))
	waves := func() *v1.RolloutPolicy {
		return &v1.RolloutPolicy{Waves: []v1.Wave{
			{Name: "canary", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}}},
			{Name: "early", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "early"}}},
			{Name: "everyone"},
		}, ProgressDeadline: &metav1.Duration{Duration: 20 * time.Second}}
	}
	// publish creates a version and returns the time until every cluster
	// runs it Ready, and the manager's requests to the management plane.
	minor := 0
	publish := func(policy *v1.RolloutPolicy) (time.Duration, int64) {
		minor++
		version := fmt.Sprintf("1.%d.0", minor)
		p := helloProfile(version, fmt.Sprint(1+minor%2))
		p.Spec.Rollout = policy
		r0, start := requests.Load(), time.Now()
		must(b, c.Create(ctx, p))
		waitUntil(b, "every cluster on "+version, 10*time.Minute, on(version, clusters))
		return time.Since(start), requests.Load() - r0
	}
	var atOnce, inWaves, rollback time.Duration
	var atOnceReq, inWavesReq int64
	b.ResetTimer()
	for range b.N {
		d, r := publish(nil)
		atOnce, atOnceReq = atOnce+d, atOnceReq+r
		d, r = publish(waves())
		inWaves, inWavesReq = inWaves+d, inWavesReq+r

		// A version whose gate never passes: from the canary's failure to
		// it Ready on the version before.
		minor++
		version := fmt.Sprintf("1.%d.0", minor)
		previous := fmt.Sprintf("1.%d.0", minor-1)
		bad := helloProfile(version, "1")
		bad.Spec.Rollout = waves()
		bad.Spec.Rollout.HealthChecks = []v1.HealthCheck{{Name: "never", Condition: "false",
			Object: v1.HealthCheckObject{APIVersion: "v1", Kind: "Namespace", Name: "hello-universe"}}}
		must(b, c.Create(ctx, bad))
		var failedAt time.Time
		waitUntil(b, "the canary failing its gate", 5*time.Minute, func() (bool, string) {
			p := &v1.ClusterProfile{}
			must(b, c.Get(ctx, client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-" + version}, p))
			st := p.Status.Rollout
			if st == nil || len(st.Waves) == 0 || len(st.Waves[0].Clusters) == 0 {
				return false, "no roll-out yet"
			}
			cl := st.Waves[0].Clusters[0]
			if cl.State == v1.ClusterRolloutFailed || cl.State == v1.ClusterRolloutRolledBack {
				failedAt = cl.Since.Time
				if cl.State == v1.ClusterRolloutRolledBack {
					// Seen only once rolled back (its failure time is gone):
					// the figure is then a lower bound.
					failedAt = time.Now()
				}
				return true, ""
			}
			return false, string(cl.State)
		})
		waitUntil(b, "the canary Ready on "+previous, 5*time.Minute, on(previous, clusters[:1]))
		rollback += time.Since(failedAt)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(atOnce.Seconds()/n, "all-at-once-s")
	b.ReportMetric(inWaves.Seconds()/n, "3-waves-s")
	b.ReportMetric(inWaves.Seconds()/atOnce.Seconds(), "waves/all-at-once")
	b.ReportMetric(float64(inWavesReq-atOnceReq)/n/float64(len(clusters)), "extra-mgmt-requests/cluster")
	b.ReportMetric(rollback.Seconds()/n, "failed-gate-to-rolled-back-Ready-s")
}
