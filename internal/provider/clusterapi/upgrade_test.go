package clusterapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/provider/clusterapi"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/version"
)

// UpgradeTestEnv, set to "required", fails the upgrade test when the
// previous Kubernetes build is missing instead of skipping it (make
// test-capi-upgrade sets it).
const upgradeTestEnv = "STRATA_UPGRADE_TEST"

// previousKubernetes is the version hack/kube-previous builds: the one an
// upgrade to Strata's default starts from.
func previousKubernetes(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../../hack/kube-previous/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "require" && f[1] == "k8s.io/kubernetes" {
			return f[2]
		}
	}
	t.Fatal("hack/kube-previous/go.mod requires no k8s.io/kubernetes")
	return ""
}

// A new profile version with another Kubernetes version upgrades a capi
// cluster as Cluster API does it: the control plane first, on the new
// build, then the workers, Machine by Machine; the layers stay.
func TestACAPIClusterUpgradesItsControlPlaneThenItsWorkers(t *testing.T) {
	from, to := previousKubernetes(t), version.Kubernetes
	if from == to {
		t.Fatalf("hack/kube-previous builds %s, the default version itself: it must be an older one", from)
	}
	if err := controlplane.FindBinaries(from).Check(controlplane.APIServerBinary, controlplane.ControllerManagerBinary,
		controlplane.SchedulerBinary, controlplane.EtcdBinary, controlplane.KwokBinary); err != nil {
		if os.Getenv(upgradeTestEnv) == "required" {
			t.Fatalf("Kubernetes %s: %v (run make kube-previous)", from, err)
		}
		t.Skipf("Kubernetes %s is not built (make kube-previous, or make test-capi-upgrade): %v", from, err)
	}
	fromPack, toPack := strings.TrimPrefix(from, "v"), strings.TrimPrefix(to, "v")

	// The kubernetes pack at the previous version, and capi-infra 0.9.0 on
	// it; 0.10.0 is the example profile as it is, on the default version.
	packs := t.TempDir()
	k8s := filepath.Join(packs, "kubernetes-"+fromPack)
	if err := os.CopyFS(k8s, os.DirFS("../../../packs/kubernetes-"+toPack)); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(k8s, "pack.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k8s, "pack.json"), []byte(strings.ReplaceAll(string(meta), toPack, fromPack)), 0o644); err != nil {
		t.Fatal(err)
	}
	profile, err := os.ReadFile("../../../examples/capi/profile-capi-infra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	profileAt := func(version, k8sVersion string) string {
		file := filepath.Join(t.TempDir(), "capi-infra-"+version+".yaml")
		text := strings.NewReplacer("capi-infra-1.0.0", "capi-infra-"+version, "version: 1.0.0", "version: "+version,
			"version: "+toPack, "version: "+k8sVersion).Replace(string(profile))
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}

	c, _ := plane(t, packs)
	ctx := context.Background()
	testenv.Apply(t, c, profileAt("0.9.0", fromPack), "team-a")
	cl := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "upgrade"},
		Spec: v1.ClusterSpec{
			Provider:  v1.ProviderCAPI,
			CAPI:      &v1.CAPISpec{ClassRef: v1.ClassRef{Name: "local", Namespace: "strata-system"}},
			NodePools: []v1.NodePool{{Name: "workers", Count: 2, Class: "default-worker"}},
			Profiles:  []v1.ProfileAttachment{{Name: "capi-infra", Version: "0.x"}},
		},
	}
	if err := c.Create(ctx, cl); err != nil {
		t.Fatal(err)
	}
	readyOn := func(v string) {
		t.Helper()
		testenv.WaitUntil(t, "upgrade Ready on Kubernetes "+v, 6*time.Minute, func() (bool, string) {
			got := getCluster(t, c, "upgrade")
			ready := conditionOf(got, v1.ConditionReady)
			return ready.Status == metav1.ConditionTrue && got.Status.CAPI != nil && got.Status.CAPI.Version == v &&
					got.Status.CAPI.Workers == v1.ReplicaCount{Ready: 2, Desired: 2},
				fmt.Sprintf("%s %+v: %s", got.Status.Phase, got.Status.CAPI, ready.Message)
		})
	}
	readyOn(from)
	cs := workload(t, c, "upgrade")
	if sv, err := cs.Discovery().ServerVersion(); err != nil || sv.GitVersion != from {
		t.Fatalf("workload API server version %v (%v), want %s", sv, err, from)
	}
	antrea, err := cs.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil || len(antrea.Items) == 0 {
		t.Fatalf("the network layer's daemon sets before the upgrade: %d (%v)", len(antrea.Items), err)
	}
	oldMachines := workerMachines(t, c)

	// The upgrade. Until the workload API server answers on the new
	// version, no worker Machine of the new version may be made; while the
	// workers are replaced the cluster is not Ready (roll-outs wait), and
	// it never reads as Failed.
	started := time.Now()
	testenv.Apply(t, c, profileAt("0.10.0", toPack), "team-a")
	var lastOld time.Time
	var controlPlaneUp time.Duration
	var failed []string
	seen := map[string]bool{}
	testenv.WaitUntil(t, "the control plane, then every worker on "+to, 6*time.Minute, func() (bool, string) {
		server := "unreachable"
		if sv, err := workload(t, c, "upgrade").Discovery().ServerVersion(); err == nil {
			server = sv.GitVersion
		}
		if server == from {
			lastOld = time.Now()
		}
		if server == to && controlPlaneUp == 0 {
			controlPlaneUp = time.Since(started)
		}
		onNew, workers := 0, workerMachines(t, c)
		for _, m := range workers {
			if m.version == to {
				onNew++
			}
		}
		got := getCluster(t, c, "upgrade")
		ready := conditionOf(got, v1.ConditionReady)
		if got.Status.Phase == v1.ClusterFailed {
			failed = append(failed, ready.Message)
		}
		if server == to && onNew < len(workers) {
			seen["workers replaced, cluster "+string(ready.Status)+" "+ready.Reason] = true
		}
		done := server == to && onNew == 2 && len(workers) == 2 && ready.Status == metav1.ConditionTrue
		return done, fmt.Sprintf("API server %s, %d of %d workers on %s; %s: %s", server, onNew, len(workers), to, got.Status.Phase, ready.Message)
	})
	t.Logf("control plane on %s %s after the new profile version, all Ready %s after; seen: %v", to, controlPlaneUp.Round(time.Second), time.Since(started).Round(time.Second), seen)
	if len(failed) > 0 {
		t.Errorf("the cluster read Failed during the upgrade: %v", failed)
	}
	if !seen["workers replaced, cluster False TopologyInProgress"] {
		t.Errorf("while Cluster API replaced the workers the cluster was never shown not Ready (TopologyInProgress): %v", seen)
	}

	for _, m := range workerMachines(t, c) {
		if m.version != to {
			t.Errorf("worker Machine %s runs %s, want %s", m.name, m.version, to)
		}
		if _, old := oldMachines[m.name]; old {
			t.Errorf("worker Machine %s was kept through the upgrade: Cluster API replaces Machines", m.name)
		}
		// Second-grained timestamps: made a whole second before the API
		// server last answered on the old version means made before the
		// control plane's upgrade.
		if m.created.Before(lastOld.Truncate(time.Second)) {
			t.Errorf("worker Machine %s of %s made at %s, before the control plane left %s (still on it at %s)", m.name, to, m.created.Format(time.RFC3339), from, lastOld.Format(time.RFC3339))
		}
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 2 {
		t.Errorf("%d nodes after the upgrade, want 2", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != to {
			t.Errorf("node %s runs kubelet %s, want %s", n.Name, n.Status.NodeInfo.KubeletVersion, to)
		}
	}
	// Nothing is lost: the layers applied before the upgrade are there, in
	// the same etcd the new API server serves.
	after, err := cs.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil || len(after.Items) != len(antrea.Items) {
		t.Errorf("the network layer's daemon sets after the upgrade: %d (%v), want %d", len(after.Items), err, len(antrea.Items))
	}
	got := getCluster(t, c, "upgrade")
	for _, l := range got.Status.Layers {
		if l.Name == "kubernetes" && l.Version != toPack {
			t.Errorf("status shows the kubernetes layer at %s, want %s", l.Version, toPack)
		}
	}
}

type machine struct {
	name, version string
	created       time.Time
}

// workerMachines lists the upgrade cluster's worker Machines by name.
func workerMachines(t *testing.T, c client.Client) map[string]machine {
	t.Helper()
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(clusterapi.GroupVersion.WithKind("MachineList"))
	if err := c.List(context.Background(), l, client.InNamespace("team-a"), client.MatchingLabels{"cluster.x-k8s.io/cluster-name": "upgrade"}); err != nil {
		t.Fatal(err)
	}
	out := map[string]machine{}
	for _, m := range l.Items {
		v, _, _ := unstructured.NestedString(m.Object, "spec", "version")
		out[m.GetName()] = machine{name: m.GetName(), version: v, created: m.GetCreationTimestamp().Time}
	}
	return out
}
