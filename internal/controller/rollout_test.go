package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/testenv"
)

// helmRevisions counts the Helm release records of a workload cluster, by
// release: a new revision is a change the cluster was made to take.
func helmRevisions(t *testing.T, cp *controlplane.ControlPlane) map[string]int {
	t.Helper()
	cs, err := cp.Clientset()
	must(t, err)
	secrets, err := cs.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{FieldSelector: "type=helm.sh/release.v1"})
	must(t, err)
	out := map[string]int{}
	for _, s := range secrets.Items {
		out[s.Labels["name"]]++
	}
	return out
}

func rolloutOf(t testing.TB, c client.Client, version string) *v1.RolloutStatus {
	t.Helper()
	p := &v1.ClusterProfile{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-" + version}, p))
	return p.Status.Rollout
}

func waveOf(st *v1.RolloutStatus, name string) v1.WaveStatus {
	for _, w := range st.Waves {
		if w.Name == name {
			return w
		}
	}
	return v1.WaveStatus{}
}

// runsVersion is the hello version a cluster's status says it runs, and
// whether it is Ready on it.
func runsVersion(t testing.TB, c client.Client, cluster *v1.Cluster) (string, bool) {
	got := getCluster(t, c, cluster)
	version := ""
	if len(got.Status.Profiles) > 0 {
		version = got.Status.Profiles[0].Version
	}
	return version, got.Status.Phase == v1.ClusterReady && got.Status.ObservedGeneration == got.Generation
}

// Six clusters, three waves. A good version moves wave by wave — the
// canary first, its soak, then a wave that waits for approval and updates
// one cluster at a time, then the rest half at a time — as the recorded
// times show. A bad version (a Deployment no node can run) fails the
// canary's deadline: the roll-out halts, the canary goes back to the
// version it ran healthy, and no other cluster gets a new release revision.
//
// Not parallel: its six clusters run before the package's parallel tests,
// not on top of them (a 2-core machine then starves them all).
func TestRolloutInWavesHaltsAndRollsBack(t *testing.T) {
	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "edge")
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	must(t, err)
	startManagerWith(t, mgmt, controller.ManagerOptions{Packs: packs, LayerTimeout: 15 * time.Second, Resync: time.Minute})
	ctx := context.Background()
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	rings := []string{"canary", "early", "early", "", "", ""}
	workloads := make([]*controlplane.ControlPlane, len(rings))
	clusters := make([]*v1.Cluster, len(rings))
	for i, ring := range rings {
		workloads[i] = testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
		clusters[i] = importCluster(t, c, "edge", fmt.Sprintf("site-%d", i+1), workloads[i].Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.x"})
		if ring != "" {
			got := getCluster(t, c, clusters[i])
			patch := client.MergeFrom(got.DeepCopy())
			got.Labels = map[string]string{"ring": ring}
			must(t, c.Patch(ctx, got, patch))
		}
	}
	allOn := func(version string) {
		t.Helper()
		waitFor(t, "every cluster Ready on hello "+version, func() (bool, string) {
			var states []string
			ok := true
			for _, cl := range clusters {
				v, ready := runsVersion(t, c, cl)
				ok = ok && v == version && ready
				states = append(states, fmt.Sprintf("%s=%s/%v", cl.Name, v, ready))
			}
			return ok, strings.Join(states, " ")
		})
	}
	allOn("1.0.0")

	waves := func(approval bool) *v1.RolloutPolicy {
		return &v1.RolloutPolicy{
			Waves: []v1.Wave{
				{Name: "canary", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}}, MaxParallel: ptrTo(intstr.FromInt32(1)), Soak: &metav1.Duration{Duration: 3 * time.Second}},
				{Name: "early", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "early"}}, MaxParallel: ptrTo(intstr.FromInt32(1)), Approval: approval},
				{Name: "everyone", MaxParallel: ptrTo(intstr.FromString("50%"))},
			},
			ProgressDeadline: &metav1.Duration{Duration: 25 * time.Second},
		}
	}
	good := helloProfile("1.1.0", "2")
	good.Spec.Rollout = waves(true)
	// Gates beyond every layer Ready: the Deployment Current, and both
	// replicas available.
	hello := v1.HealthCheckObject{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "hello-universe", Name: "hello-universe-deployment"}
	good.Spec.Rollout.HealthChecks = []v1.HealthCheck{{Name: "current", Object: hello}, {Name: "two-available", Object: hello, Condition: "self.status.availableReplicas >= 2"}}
	must(t, c.Create(ctx, good))
	waitFor(t, "the roll-out of 1.1.0 paused before wave early", func() (bool, string) {
		st := rolloutOf(t, c, "1.1.0")
		return st != nil && st.Phase == v1.RolloutPaused && strings.Contains(st.Reason, "wave early waits for approval"), fmt.Sprintf("%+v", st)
	})
	if v, ready := runsVersion(t, c, clusters[0]); v != "1.1.0" || !ready {
		t.Errorf("the canary runs %s (ready %v), want 1.1.0", v, ready)
	}
	for _, cl := range clusters[1:] {
		if v, _ := runsVersion(t, c, cl); v != "1.0.0" {
			t.Errorf("%s moved to %s before its wave", cl.Name, v)
		}
	}
	kubeconfig := testenv.Kubeconfig(t, mgmt)
	strataCLI(t, kubeconfig, controller.SharedNamespace, "rollout", "resume", "hello", "1.1.0")
	waitFor(t, "the roll-out of 1.1.0 Completed", func() (bool, string) {
		st := rolloutOf(t, c, "1.1.0")
		return st != nil && st.Phase == v1.RolloutCompleted, fmt.Sprintf("%+v", st)
	})
	allOn("1.1.0")

	var report struct {
		Profile, Version, Phase string
		Waves                   []struct {
			Name     string
			Clusters []struct{ Namespace, Name, State string }
		}
	}
	out := strataCLI(t, kubeconfig, controller.SharedNamespace, "rollout", "status", "hello", "1.1.0", "-o", "json")
	must(t, json.Unmarshal([]byte(out), &report))
	var shape []string
	for _, w := range report.Waves {
		for _, cl := range w.Clusters {
			shape = append(shape, w.Name+":"+cl.Name+"="+cl.State)
		}
	}
	want := []string{"canary:site-1=Healthy", "early:site-2=Healthy", "early:site-3=Healthy", "everyone:site-4=Healthy", "everyone:site-5=Healthy", "everyone:site-6=Healthy"}
	if report.Phase != "Completed" || !slices.Equal(shape, want) {
		t.Errorf("status -o json: %s %v, want Completed %v", report.Phase, shape, want)
	}

	// Order and overlap, from the recorded times.
	st := rolloutOf(t, c, "1.1.0")
	canary, early, everyone := waveOf(st, "canary"), waveOf(st, "early"), waveOf(st, "everyone")
	if early.StartTime.Time.Before(canary.HealthyTime.Add(3 * time.Second)) {
		t.Errorf("wave early started %s, before the canary's 3 s soak from %s ended", early.StartTime, canary.HealthyTime)
	}
	byStart := func(w v1.WaveStatus) []v1.RolloutCluster {
		cs := slices.Clone(w.Clusters)
		sort.Slice(cs, func(i, j int) bool { return cs[i].StartTime.Before(cs[j].StartTime) })
		return cs
	}
	if e := byStart(early); e[1].StartTime.Before(e[0].ReadyTime) {
		t.Errorf("wave early (maxParallel 1): %s started at %s, before %s was Ready at %s", e[1].Name, e[1].StartTime, e[0].Name, e[0].ReadyTime)
	}
	if everyone.StartTime.Before(early.HealthyTime) {
		t.Errorf("wave everyone started %s, before wave early was healthy at %s", everyone.StartTime, early.HealthyTime)
	}
	if e := byStart(everyone); e[2].StartTime.Time.Before(minTime(e[0].ReadyTime.Time, e[1].ReadyTime.Time)) {
		t.Errorf("wave everyone (50%% of 3 = 2 at once): three clusters updating together: %+v", e)
	}

	// A bad version: the canary fails, the roll-out halts and rolls back.
	revisions := map[string]map[string]int{}
	for i, cl := range clusters {
		revisions[cl.Name] = helmRevisions(t, workloads[i])
	}
	bad := helloProfile("1.2.0", "1")
	bad.Spec.Layers = append(bad.Spec.Layers, inlineLayer("stuck", "stuck", deploymentOnNodes("stuck", "strata.dev/no-such-node", "true")))
	bad.Spec.Rollout = waves(false)
	must(t, c.Create(ctx, bad))
	waitFor(t, "the roll-out of 1.2.0 RolledBack", func() (bool, string) {
		st := rolloutOf(t, c, "1.2.0")
		return st != nil && st.Phase == v1.RolloutRolledBack, fmt.Sprintf("%+v", st)
	})
	st = rolloutOf(t, c, "1.2.0")
	if cs := waveOf(st, "canary").Clusters; len(cs) != 1 || cs[0].State != v1.ClusterRolloutRolledBack || cs[0].From != "1.1.0" || !strings.Contains(cs[0].Message, "not healthy on 1.2.0 within 25s") {
		t.Errorf("canary in the roll-out: %+v", cs)
	}
	if !strings.Contains(st.Reason, "edge/site-1") {
		t.Errorf("halt reason %q does not name the failed cluster", st.Reason)
	}
	waitFor(t, "the canary Ready on 1.1.0 again, without the stuck layer", func() (bool, string) {
		got := getCluster(t, c, clusters[0])
		v, ready := runsVersion(t, c, clusters[0])
		return v == "1.1.0" && ready && len(got.Status.Layers) == 1 && slices.Equal(got.Status.Profiles[0].Rejected, []string{"1.2.0"}),
			fmt.Sprintf("%s %v %+v %+v", v, ready, got.Status.Layers, got.Status.Profiles)
	})
	cs, err := workloads[0].Clientset()
	must(t, err)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "stuck", metav1.GetOptions{}); err == nil {
		if d, err := cs.AppsV1().Deployments("stuck").Get(ctx, "stuck", metav1.GetOptions{}); err == nil {
			t.Errorf("the stuck Deployment is still on the canary: %+v", d.Status)
		}
	}
	for i, cl := range clusters[1:] {
		if v, _ := runsVersion(t, c, cl); v != "1.1.0" {
			t.Errorf("%s runs %s, want 1.1.0 (its wave never started)", cl.Name, v)
		}
		if got := helmRevisions(t, workloads[i+1]); !maps.Equal(got, revisions[cl.Name]) {
			t.Errorf("%s has release revisions %v, had %v: it was touched", cl.Name, got, revisions[cl.Name])
		}
	}
	// 1.1.0's roll-out is a record: with 1.2.0 published, its clusters
	// stay listed with their states and times.
	st = rolloutOf(t, c, "1.1.0")
	shape = nil
	for _, w := range st.Waves {
		for _, cl := range w.Clusters {
			shape = append(shape, w.Name+":"+cl.Name+"="+string(cl.State))
			if cl.StartTime == nil || cl.ReadyTime == nil {
				t.Errorf("1.1.0's record lost %s's times: %+v", cl.Name, cl)
			}
		}
	}
	if st.Phase != v1.RolloutCompleted || !slices.Equal(shape, want) {
		t.Errorf("1.1.0's roll-out once 1.2.0 came: %s %v, want Completed %v", st.Phase, shape, want)
	}
	var events eventsv1.EventList
	must(t, c.List(ctx, &events, client.InNamespace(controller.SharedNamespace)))
	found := false
	for _, e := range events.Items {
		found = found || (e.Reason == "ClusterRolledBack" && strings.Contains(e.Note, "edge/site-1"))
	}
	if !found {
		t.Error("no ClusterRolledBack event for the canary")
	}
}

func ptrTo[T any](v T) *T { return &v }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// webProfile is version v of a three-layer profile: hello-universe, a
// banner ConfigMap and an extra ConfigMap, each its own release.
func webProfile(version, replicas, banner string) *v1.ClusterProfile {
	p := helloProfile(version, replicas)
	p.Name, p.Spec.Name = "web-"+version, "web"
	p.Spec.Layers = append(p.Spec.Layers,
		inlineLayer("banner", "web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: banner, namespace: web}\ndata: {message: "+banner+"}\n"),
		inlineLayer("extra", "web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: web}\ndata: {kept: \"yes\"}\n"))
	return p
}

func layerNames(cl *v1.Cluster) []string {
	var out []string
	for _, l := range cl.Status.Layers {
		out = append(out, l.Name+"@"+l.ProfileVersion+"="+l.Phase)
	}
	return out
}

// A roll-out paused from the start moves nobody until resumed; the manager
// stopped in the middle of wave 2 and started again finishes it, then wave
// 3, with one release revision per changed layer per cluster. A bad version
// that removes a layer and swaps another is rolled back on the canary —
// the layer reinstalled, the swap undone — and a newer version published
// while it is halted moves every cluster, the canary included.
//
// Not parallel, as the six-cluster test.
func TestRolloutSurvivesARestartAndRollsBackRemovedAndSwappedLayers(t *testing.T) {
	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "shop")
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	must(t, err)
	opts := controller.ManagerOptions{Packs: packs, LayerTimeout: 10 * time.Second, Resync: time.Minute}
	stop := startManagerWith(t, mgmt, opts)
	ctx := context.Background()
	kubeconfig := testenv.Kubeconfig(t, mgmt)
	must(t, c.Create(ctx, webProfile("1.0.0", "1", "one")))
	rings := []string{"a", "b", "c"}
	workloads := make([]*controlplane.ControlPlane, len(rings))
	clusters := make([]*v1.Cluster, len(rings))
	for i, ring := range rings {
		workloads[i] = testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
		clusters[i] = importCluster(t, c, "shop", "store-"+ring, workloads[i].Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "web", Version: "1.x"})
		got := getCluster(t, c, clusters[i])
		patch := client.MergeFrom(got.DeepCopy())
		got.Labels = map[string]string{"ring": ring}
		must(t, c.Patch(ctx, got, patch))
	}
	on := func(version string, which ...int) {
		t.Helper()
		waitFor(t, "clusters Ready on web "+version, func() (bool, string) {
			ok, states := true, ""
			for _, i := range which {
				v, ready := runsVersion(t, c, clusters[i])
				ok = ok && v == version && ready
				states += fmt.Sprintf(" %s=%s/%v", clusters[i].Name, v, ready)
			}
			return ok, states
		})
	}
	on("1.0.0", 0, 1, 2)
	policy := func() *v1.RolloutPolicy {
		var waves []v1.Wave
		for _, r := range rings {
			waves = append(waves, v1.Wave{Name: "ring-" + r, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": r}}})
		}
		return &v1.RolloutPolicy{Waves: waves, ProgressDeadline: &metav1.Duration{Duration: 20 * time.Second}}
	}
	webRollout := func(version string) *v1.RolloutStatus {
		p := &v1.ClusterProfile{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: controller.SharedNamespace, Name: "web-" + version}, p))
		return p.Status.Rollout
	}

	good := webProfile("1.1.0", "2", "two")
	good.Spec.Rollout = policy()
	good.Annotations = map[string]string{"rollout.strata.dev/paused": "true"}
	must(t, c.Create(ctx, good))
	waitFor(t, "the roll-out Paused", func() (bool, string) {
		st := webRollout("1.1.0")
		return st != nil && st.Phase == v1.RolloutPaused, fmt.Sprintf("%+v", st)
	})
	for _, cl := range clusters {
		if v, _ := runsVersion(t, c, cl); v != "1.0.0" {
			t.Errorf("%s moved to %s while the roll-out was paused", cl.Name, v)
		}
	}
	strataCLI(t, kubeconfig, controller.SharedNamespace, "rollout", "resume", "web", "1.1.0")
	waitFor(t, "wave ring-b updating", func() (bool, string) {
		st := webRollout("1.1.0")
		if st == nil {
			return false, "no status"
		}
		w := waveOf(st, "ring-b")
		return len(w.Clusters) == 1 && w.Clusters[0].State == v1.ClusterRolloutUpdating, fmt.Sprintf("%+v", st.Waves)
	})
	stop()
	startManagerWith(t, mgmt, opts)
	waitFor(t, "the roll-out of 1.1.0 Completed after the restart", func() (bool, string) {
		st := webRollout("1.1.0")
		return st != nil && st.Phase == v1.RolloutCompleted, fmt.Sprintf("%+v", st)
	})
	on("1.1.0", 0, 1, 2)
	for i, w := range workloads {
		// install + one upgrade for the two changed layers; extra unchanged.
		if got, want := helmRevisions(t, w), map[string]int{"hello-universe": 2, "banner": 2, "extra": 1}; !maps.Equal(got, want) {
			t.Errorf("%s release revisions %v, want %v", clusters[i].Name, got, want)
		}
	}
	if st := webRollout("1.1.0"); waveOf(st, "ring-c").StartTime.Before(waveOf(st, "ring-b").HealthyTime) {
		t.Errorf("wave ring-c started before ring-b was healthy: %+v", st.Waves)
	}

	// A bad version: extra removed, banner swapped for a notice layer, and a
	// Deployment no node can run.
	bad := webProfile("1.2.0", "2", "two")
	bad.Spec.Layers = []v1.Layer{bad.Spec.Layers[0],
		inlineLayer("notice", "web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notice, namespace: web}\ndata: {message: three}\n"),
		inlineLayer("stuck", "stuck", deploymentOnNodes("stuck", "strata.dev/no-such-node", "true")),
	}
	bad.Spec.Rollout = policy()
	must(t, c.Create(ctx, bad))
	waitFor(t, "the roll-out of 1.2.0 RolledBack", func() (bool, string) {
		st := webRollout("1.2.0")
		return st != nil && st.Phase == v1.RolloutRolledBack, fmt.Sprintf("%+v", st)
	})
	waitFor(t, "store-a back on 1.1.0 with banner and extra", func() (bool, string) {
		got := getCluster(t, c, clusters[0])
		names := layerNames(got)
		want := []string{"hello-universe@1.1.0=Ready", "banner@1.1.0=Ready", "extra@1.1.0=Ready"}
		return got.Status.Phase == v1.ClusterReady && slices.Equal(names, want), fmt.Sprintf("%s %v", got.Status.Phase, names)
	})
	cs, err := workloads[0].Clientset()
	must(t, err)
	if cm, err := cs.CoreV1().ConfigMaps("web").Get(ctx, "extra", metav1.GetOptions{}); err != nil || cm.Data["kept"] != "yes" {
		t.Errorf("extra after the roll-back: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("web").Get(ctx, "notice", metav1.GetOptions{}); err == nil {
		t.Error("the swapped-in notice layer is still on store-a")
	}
	for _, i := range []int{1, 2} {
		if got := helmRevisions(t, workloads[i]); !maps.Equal(got, map[string]int{"hello-universe": 2, "banner": 2, "extra": 1}) {
			t.Errorf("%s was touched by the bad version: %v", clusters[i].Name, got)
		}
	}

	// A fixed version published while 1.2.0 is halted reaches everyone.
	fixed := webProfile("1.2.1", "2", "two")
	fixed.Spec.Layers = []v1.Layer{fixed.Spec.Layers[0],
		inlineLayer("notice", "web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notice, namespace: web}\ndata: {message: three}\n")}
	must(t, c.Create(ctx, fixed))
	on("1.2.1", 0, 1, 2)
	if got := getCluster(t, c, clusters[0]); !slices.Equal(layerNames(got), []string{"hello-universe@1.2.1=Ready", "notice@1.2.1=Ready"}) {
		t.Errorf("store-a on 1.2.1: %v", layerNames(got))
	}

	// Every layer Ready is not enough when a health gate says no: the
	// canary fails the gate and goes back to 1.2.1.
	gated := webProfile("1.3.0", "2", "two")
	gated.Spec.Layers = fixed.Spec.Layers
	gated.Spec.Rollout = policy()
	gated.Spec.Rollout.HealthChecks = []v1.HealthCheck{{Name: "notice-says-four", Condition: "self.data.message == 'four'",
		Object: v1.HealthCheckObject{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "notice"}}}
	must(t, c.Create(ctx, gated))
	waitFor(t, "the roll-out of 1.3.0 RolledBack by its gate", func() (bool, string) {
		st := webRollout("1.3.0")
		return st != nil && st.Phase == v1.RolloutRolledBack, fmt.Sprintf("%+v", st)
	})
	if cs := waveOf(webRollout("1.3.0"), "ring-a").Clusters; len(cs) != 1 || !strings.Contains(cs[0].Message, `health check notice-says-four: ConfigMap web/notice: condition "self.data.message == 'four'" is false`) {
		t.Errorf("canary of 1.3.0: %+v", cs)
	}
	on("1.2.1", 0, 1, 2)
}

// A cluster whose first version of a profile waits for its wave runs
// nothing of it yet, and says so: Pending, not Ready, naming the roll-out
// and the wave. Once its wave comes it installs and is Ready.
func TestAFirstInstallWaitingForItsWaveIsNotReady(t *testing.T) {
	t.Parallel()
	mgmt, c := managementPlane(t, 0, controller.SharedNamespace, "edge")
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	ctx := context.Background()
	p := helloProfile("1.0.0", "1")
	p.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "stores", Approval: true}}}
	must(t, c.Create(ctx, p))
	cluster := importCluster(t, c, "edge", "store-1", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.x"})
	waitFor(t, "the cluster waiting for wave stores", func() (bool, string) {
		got := getCluster(t, c, cluster)
		ready := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady)
		ok := got.Status.Phase == v1.ClusterPending && ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == "AwaitingRollout" &&
			ready.Message == "waiting for the roll-out of hello 1.0.0 to reach wave stores"
		return ok, fmt.Sprintf("%s %+v", got.Status.Phase, ready)
	})
	cs, err := workload.Clientset()
	must(t, err)
	if _, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("hello-universe installed before its wave (%v)", err)
	}
	strataCLI(t, testenv.Kubeconfig(t, mgmt), controller.SharedNamespace, "rollout", "resume", "hello", "1.0.0")
	waitFor(t, "the cluster Ready on 1.0.0 once its wave came", func() (bool, string) {
		v, ready := runsVersion(t, c, cluster)
		return v == "1.0.0" && ready, v
	})
}
