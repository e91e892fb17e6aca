package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/testenv"
)

// statusLog keeps every status of one Cluster a watch delivers.
type statusLog struct {
	sync.Mutex
	seen []v1.ClusterStatus
}

func (s *statusLog) all() []v1.ClusterStatus {
	s.Lock()
	defer s.Unlock()
	return slices.Clone(s.seen)
}

// watchStatuses records the statuses of a Cluster from now until the test
// ends.
func watchStatuses(t *testing.T, c client.WithWatch, cl *v1.Cluster) *statusLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := c.Watch(ctx, &v1.ClusterList{}, client.InNamespace(cl.Namespace), client.MatchingFields{"metadata.name": cl.Name})
	must(t, err)
	log := &statusLog{}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if got, ok := ev.Object.(*v1.Cluster); ok {
				log.Lock()
				log.seen = append(log.seen, got.Status)
				log.Unlock()
			}
		}
	}()
	return log
}

// readyClaimsTrue says whether a status that claims Ready matches what it
// says the cluster runs: every layer Ready, on the versions it names.
func readyClaimsTrue(st v1.ClusterStatus) (bool, string) {
	if !apimeta.IsStatusConditionTrue(st.Conditions, v1.ConditionReady) && st.Phase != v1.ClusterReady {
		return true, ""
	}
	versions := map[string]string{}
	for _, p := range st.Profiles {
		versions[p.Name] = p.Version
	}
	for _, l := range st.Layers {
		if l.Phase != "Ready" || versions[l.Profile] != l.ProfileVersion {
			return false, fmt.Sprintf("phase %s, Ready condition %v, with layer %s %s on %s %s (profiles %+v)", st.Phase,
				apimeta.IsStatusConditionTrue(st.Conditions, v1.ConditionReady), l.Name, l.Phase, l.Profile, l.ProfileVersion, st.Profiles)
		}
	}
	return true, ""
}

// While a change is applied, the status says so: Reconciling with the
// plan, the version being applied, the layer being applied in progress;
// at no point is Ready shown for a version the cluster does not run.
func TestTheStatusTellsAChangeUnderWay(t *testing.T) {
	t.Parallel()
	mgmt, c, _, cl := oneClusterOnHello(t, "web", 20*time.Second)
	ctx := context.Background()
	watcher, err := client.NewWithWatch(mgmt, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	log := watchStatuses(t, watcher, cl)

	// 1.1.0 adds a layer that takes its whole timeout to fail.
	slow := helloProfile("1.1.0", "1")
	slow.Spec.Layers = append(slow.Spec.Layers, inlineLayer("slow", "slow", deploymentOnNodes("slow", "strata.dev/no-such-node", "true")))
	must(t, c.Create(ctx, slow))
	waitFor(t, "web Failed on 1.1.0's slow layer", func() (bool, string) {
		got := getCluster(t, c, cl)
		return got.Status.Phase == v1.ClusterFailed && len(got.Status.Layers) == 2 && got.Status.Layers[1].Phase == "Failed", fmt.Sprintf("%s %+v", got.Status.Phase, got.Status.Layers)
	})

	seen := log.all()
	underWay := -1
	for i, st := range seen {
		if ok, why := readyClaimsTrue(st); !ok {
			t.Errorf("status %d of %d claims Ready for what does not run: %s", i, len(seen), why)
		}
		reconciling := apimeta.FindStatusCondition(st.Conditions, v1.ConditionReconciling)
		if underWay < 0 && st.Phase == v1.ClusterReconciling && reconciling != nil && reconciling.Status == metav1.ConditionTrue &&
			strings.Contains(reconciling.Message, "1 of 2 layers to change") && len(st.Profiles) == 1 && st.Profiles[0].Version == "1.1.0" &&
			len(st.Layers) == 2 && st.Layers[1].Name == "slow" && st.Layers[1].Phase == "Installing" {
			underWay = i
		}
	}
	if underWay < 0 {
		t.Fatalf("no status showed the change under way (Reconciling, hello 1.1.0, layer slow Installing) among %d: %+v", len(seen), seen)
	}
	if last := seen[len(seen)-1]; underWay == len(seen)-1 || last.Phase != v1.ClusterFailed {
		t.Errorf("the change under way was not followed by its outcome: last %s", last.Phase)
	}
}

// A change done before the manager would announce it is written once,
// with its outcome: no status in between says Reconciling. Over a fleet,
// that halves what a new version costs the API server.
func TestAQuickChangeIsWrittenOnceWithItsOutcome(t *testing.T) {
	t.Parallel()
	// Long enough that scaling hello on a simulated node is done well
	// before: the quick path is what is tested, however slow the machine.
	mgmt, c, _, cl := oneClusterOnHelloWith(t, "kiosk", controller.ManagerOptions{LayerTimeout: 20 * time.Second, AnnounceAfter: time.Minute})
	watcher, err := client.NewWithWatch(mgmt, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	log := watchStatuses(t, watcher, cl)

	must(t, c.Create(context.Background(), helloProfile("1.1.0", "2")))
	waitFor(t, "kiosk Ready on 1.1.0", func() (bool, string) {
		v, ready := runsVersion(t, c, cl)
		return v == "1.1.0" && ready, v
	})
	seen := log.all()
	for i, st := range seen {
		if st.Phase == v1.ClusterReconciling || apimeta.IsStatusConditionTrue(st.Conditions, v1.ConditionReconciling) {
			t.Errorf("status %d of %d was written while the change was under way: %s %+v", i, len(seen), st.Phase, st.Conditions)
		}
	}
	if len(seen) == 0 {
		t.Fatalf("the watch saw no status")
	}
	last := seen[len(seen)-1]
	if last.Phase != v1.ClusterReady || len(last.Layers) != 1 || last.Layers[0].ProfileVersion != "1.1.0" {
		t.Errorf("the one write does not carry the outcome: %s %+v", last.Phase, last.Layers)
	}
	t.Logf("%d statuses seen from the watch's start to Ready on 1.1.0", len(seen))
}

// A roll-out that fails a cluster at its progress deadline pulls the
// version back at once: the apply waiting on the failed layer stops (the
// layers' own timeout is ten minutes here) and the last good version is
// Ready again within seconds.
func TestADeadlinePullsAFailedVersionBackAtOnce(t *testing.T) {
	t.Parallel()
	took := deadlineToRollback(t, 10*time.Second)
	t.Logf("deadline → last good version Ready again: %s", took.Round(100*time.Millisecond))
}

// BenchmarkDeadlineToRollback measures the time from a roll-out failing a
// cluster at its progress deadline to the cluster Ready again on the last
// good version (one workload cluster, a Deployment that can never be
// scheduled, a layer timeout of ten minutes).
func BenchmarkDeadlineToRollback(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		total += deadlineToRollback(b, 5*time.Second)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-deadline-to-rollback")
}

// oneClusterOnHello starts a management plane and its manager (with the
// layer timeout given), and an imported cluster following hello 1.x, Ready
// on 1.0.0.
func oneClusterOnHello(t testing.TB, name string, layerTimeout time.Duration) (*rest.Config, client.Client, *controlplane.ControlPlane, *v1.Cluster) {
	t.Helper()
	return oneClusterOnHelloWith(t, name, controller.ManagerOptions{LayerTimeout: layerTimeout})
}

// oneClusterOnHelloWith is oneClusterOnHello with the manager's options
// given (its packs are the catalog's, its resync a minute).
func oneClusterOnHelloWith(t testing.TB, name string, opts controller.ManagerOptions) (*rest.Config, client.Client, *controlplane.ControlPlane, *v1.Cluster) {
	t.Helper()
	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "shop")
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	must(t, err)
	opts.Packs, opts.Resync = packs, time.Minute
	startManagerWith(t, mgmt, opts)
	must(t, c.Create(context.Background(), helloProfile("1.0.0", "1")))
	wc := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	cl := importCluster(t, c, "shop", name, wc.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.x"})
	waitFor(t, name+" Ready on 1.0.0", func() (bool, string) {
		v, ready := runsVersion(t, c, cl)
		return v == "1.0.0" && ready, v
	})
	return mgmt, c, wc, cl
}

func deadlineToRollback(t testing.TB, deadline time.Duration) time.Duration {
	_, c, wc, cl := oneClusterOnHello(t, "canary", 10*time.Minute)
	ctx := context.Background()
	bad := helloProfile("1.1.0", "1")
	bad.Spec.Layers = append(bad.Spec.Layers, inlineLayer("stuck", "stuck", deploymentOnNodes("stuck", "strata.dev/no-such-node", "true")))
	bad.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "all"}}, ProgressDeadline: &metav1.Duration{Duration: deadline}}
	must(t, c.Create(ctx, bad))
	var failedAt time.Time
	waitFor(t, "the roll-out to fail the canary at its deadline", func() (bool, string) {
		st := rolloutOf(t, c, "1.1.0")
		if st == nil || len(st.Waves) == 0 || len(st.Waves[0].Clusters) == 0 {
			return false, fmt.Sprintf("%+v", st)
		}
		rc := st.Waves[0].Clusters[0]
		if rc.State == v1.ClusterRolloutFailed || rc.State == v1.ClusterRolloutRolledBack {
			failedAt = rc.StartTime.Add(deadline)
			return true, ""
		}
		return false, string(rc.State)
	})
	waitFor(t, "the canary Ready on 1.0.0 again, without the stuck layer", func() (bool, string) {
		got := getCluster(t, c, cl)
		v, ready := runsVersion(t, c, cl)
		return v == "1.0.0" && ready && len(got.Status.Layers) == 1, fmt.Sprintf("%s %v %+v", v, ready, got.Status.Layers)
	})
	took := time.Since(failedAt)
	cs, err := wc.Clientset()
	must(t, err)
	if _, err := cs.AppsV1().Deployments("stuck").Get(ctx, "stuck", metav1.GetOptions{}); err == nil {
		t.Errorf("the stuck Deployment is still on the canary")
	}
	return took
}
