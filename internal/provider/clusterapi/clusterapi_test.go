package clusterapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/provider/clusterapi"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/testenv"
)

// plane is a management plane with Strata's CRDs, Cluster API and the
// local providers, and Strata's manager on it.
func plane(t testing.TB, extraPacks ...string) (client.Client, func()) {
	b := planeWith(t, nil, extraPacks...)
	return b.c, b.restart
}

// bed is a plane and what runs on it.
type bed struct {
	c       client.Client
	cfg     *rest.Config
	restart func()
	capi    *testenv.ClusterAPI
}

// planeWith is plane with the local cluster provider given to the manager.
func planeWith(t testing.TB, localClusters *local.Provider, extraPacks ...string) bed {
	t.Helper()
	log.SetLogger(logr.Discard())
	cfg := testenv.Management(t, "../../../config/crd/bases")
	capiBed := testenv.StartClusterAPI(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	packs, err := pack.LoadCatalog(append([]string{"../../../../shared/testdata/pack-central", "../../../packs"}, extraPacks...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Cluster API is installed before the manager starts, so it watches
	// the Cluster API Clusters it owns.
	start := func() (stop func()) {
		// Short layer timeout: removing hello-universe waits for its
		// namespace, which cannot finish terminating while Antrea's
		// APIServices are unavailable, as they are on simulated nodes
		// (the namespace controller's discovery fails); the layer's
		// objects are gone by then and the retry finds the release gone.
		mgr, err := controller.NewManager(cfg, controller.ManagerOptions{Packs: packs, LayerTimeout: 30 * time.Second, SeveralPerProcess: true, Local: localClusters})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- mgr.Start(ctx) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("manager: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	stop := start()
	restart := func() {
		stop()
		stop = start()
	}
	for _, ns := range []string{"team-a"} {
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Apply(t, c, "../../../examples/capi/profile-capi-infra.yaml", "team-a")
	testenv.Apply(t, c, "../../../examples/addon-hello.yaml", "team-a")
	return bed{c: c, cfg: cfg, restart: restart, capi: capiBed}
}

func getCluster(t testing.TB, c client.Client, name string) *v1.Cluster {
	t.Helper()
	got := &v1.Cluster{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: name}, got); err != nil {
		t.Fatal(err)
	}
	return got
}

func conditionOf(c *v1.Cluster, typ string) metav1.Condition {
	if cond := apimeta.FindStatusCondition(c.Status.Conditions, typ); cond != nil {
		return *cond
	}
	return metav1.Condition{}
}

// workload reaches the workload cluster only through the Secret Cluster
// API's control plane wrote.
func workload(t *testing.T, c client.Client, name string) *kubernetes.Clientset {
	t.Helper()
	return testenv.WorkloadClient(t, c, "team-a", name+"-kubeconfig", clusterapi.KubeconfigKey)
}

func TestACAPIClusterIsProvisionedRunsItsLayersScalesAndGoes(t *testing.T) {
	c, restartManager := plane(t)
	ctx := context.Background()
	started := time.Now()
	testenv.Apply(t, c, "../../../examples/capi/cluster-capi-dev.yaml", "team-a")

	// Provisioning first; a manager restarted meanwhile goes on with the
	// same Cluster API Cluster.
	testenv.WaitUntil(t, "capi-dev shown Provisioning", 2*time.Minute, func() (bool, string) {
		got := getCluster(t, c, "capi-dev")
		return got.Status.Phase == v1.ClusterProvisioning || got.Status.Phase == v1.ClusterReady, string(got.Status.Phase)
	})
	restartManager()
	testenv.WaitUntil(t, "capi-dev Ready", 5*time.Minute, func() (bool, string) {
		got := getCluster(t, c, "capi-dev")
		ready := conditionOf(got, v1.ConditionReady)
		return ready.Status == metav1.ConditionTrue, fmt.Sprintf("%s: %s", got.Status.Phase, ready.Message)
	})
	t.Logf("Ready %s after apply", time.Since(started).Round(time.Second))
	for _, kind := range []string{"Cluster", "MachineDeployment"} {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(clusterapi.GroupVersion.WithKind(kind + "List"))
		if err := c.List(ctx, l, client.InNamespace("team-a")); err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 1 {
			t.Errorf("%d Cluster API %ss after a manager restart, want 1", len(l.Items), kind)
		}
	}
	got := getCluster(t, c, "capi-dev")
	want := v1.CAPIStatus{Phase: "Provisioned", ControlPlane: v1.ReplicaCount{Ready: 1, Desired: 1}, Workers: v1.ReplicaCount{Ready: 2, Desired: 2}, Version: "v1.37.2"}
	if got.Status.CAPI == nil || *got.Status.CAPI != want {
		t.Errorf("status.capi = %+v, want %+v", got.Status.CAPI, want)
	}
	if p := conditionOf(got, v1.ConditionProvisioned); p.Status != metav1.ConditionTrue {
		t.Errorf("Provisioned = %+v, want True (Cluster API's Available)", p)
	}
	capiCluster := clusterapi.Object("Cluster")
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "capi-dev"}, capiCluster); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(capiCluster.Object, "spec", "topology", "version"); v != "v1.37.2" {
		t.Errorf("topology.version = %q, want the k8s layer's v1.37.2", v)
	}
	if cpu, _, _ := unstructured.NestedSlice(capiCluster.Object, "spec", "topology", "variables"); len(cpu) != 1 {
		t.Errorf("topology.variables = %v, want the cluster's nodeCPU", cpu)
	}
	cs := workload(t, c, "capi-dev")
	if _, err := cs.AppsV1().Deployments("hello-capi").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("hello-universe in the workload cluster: %v", err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.Capacity.Cpu().String() != "16" {
			t.Errorf("node %s has %s CPUs, want the class variable's 16", n.Name, n.Status.Capacity.Cpu())
		}
	}

	// A pool scaled 2 → 3 is the machineDeployment's replicas; a pool
	// added is one more machineDeployment, and removed, it goes with its
	// nodes.
	setPools(t, c, v1.NodePool{Name: "workers", Count: 3, Class: "default-worker"}, v1.NodePool{Name: "edge", Count: 1, Class: "default-worker"})
	waitWorkers(t, c, cs, map[string]int{"workers": 3, "edge": 1})
	setPools(t, c, v1.NodePool{Name: "workers", Count: 3, Class: "default-worker"})
	waitWorkers(t, c, cs, map[string]int{"workers": 3})
	t.Logf("scaled and pools changed %s after apply", time.Since(started).Round(time.Second))

	// Delete: layers, then Cluster API's cluster, then the Strata Cluster.
	if err := c.Delete(ctx, getCluster(t, c, "capi-dev")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "capi-dev gone", 4*time.Minute, func() (bool, string) {
		left := &v1.Cluster{}
		err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "capi-dev"}, left)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		u := clusterapi.Object("Cluster")
		capiErr := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "capi-dev"}, u)
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return false, fmt.Sprintf("Strata Cluster %s %v; Cluster API Cluster %s %v", left.Status.Phase, left.Finalizers, phase, capiErr)
	})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "capi-dev"}, clusterapi.Object("Cluster")); !apierrors.IsNotFound(err) {
		t.Errorf("the Cluster API Cluster is still there: %v", err)
	}
	if _, err := cs.Discovery().ServerVersion(); err == nil {
		t.Error("the workload API server still answers after its cluster was deleted")
	}
	t.Logf("deleted %s after apply", time.Since(started).Round(time.Second))
}

func setPools(t *testing.T, c client.Client, pools ...v1.NodePool) {
	t.Helper()
	got := getCluster(t, c, "capi-dev")
	got.Spec.NodePools = pools
	if err := c.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
}

// waitWorkers waits until the cluster is Ready with as many workers as the
// pools want, Cluster API's machineDeployments are exactly the pools, and
// the workload cluster's nodes are exactly theirs (by pool label).
func waitWorkers(t *testing.T, c client.Client, cs *kubernetes.Clientset, want map[string]int) {
	t.Helper()
	total := 0
	for _, n := range want {
		total += n
	}
	testenv.WaitUntil(t, fmt.Sprintf("workers %v", want), 3*time.Minute, func() (bool, string) {
		got := getCluster(t, c, "capi-dev")
		if got.Status.CAPI == nil || got.Status.CAPI.Workers != (v1.ReplicaCount{Ready: int32(total), Desired: int32(total)}) || got.Status.Phase != v1.ClusterReady {
			return false, fmt.Sprintf("%s %+v", got.Status.Phase, got.Status.CAPI)
		}
		mds := &unstructured.UnstructuredList{}
		mds.SetGroupVersionKind(clusterapi.GroupVersion.WithKind("MachineDeploymentList"))
		if err := c.List(context.Background(), mds, client.InNamespace("team-a")); err != nil {
			return false, err.Error()
		}
		if len(mds.Items) != len(want) {
			return false, fmt.Sprintf("%d machineDeployments", len(mds.Items))
		}
		nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		byPool := map[string]int{}
		for _, n := range nodes.Items {
			byPool[n.Labels["strata.dev/node-pool"]]++
		}
		for pool, n := range want {
			if byPool[pool] != n {
				return false, fmt.Sprintf("nodes by pool: %v", byPool)
			}
		}
		return len(nodes.Items) == total, fmt.Sprintf("nodes by pool: %v", byPool)
	})
}

func TestBadCAPIClustersStallAndCreateNothing(t *testing.T) {
	c, _ := plane(t)
	ctx := context.Background()
	base := func(name string) *v1.Cluster {
		return &v1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec: v1.ClusterSpec{
				Provider:  v1.ProviderCAPI,
				CAPI:      &v1.CAPISpec{ClassRef: v1.ClassRef{Name: "local", Namespace: "strata-system"}},
				NodePools: []v1.NodePool{{Name: "workers", Count: 1, Class: "default-worker"}},
				Profiles:  []v1.ProfileAttachment{{Name: "capi-infra", Version: "1.0.0"}},
			},
		}
	}
	noClass := base("no-class")
	noClass.Spec.CAPI.ClassRef.Name = "aws"
	badPool := base("bad-pool")
	badPool.Spec.NodePools[0].Class = "gpu"
	badVar := base("bad-var")
	badVar.Spec.CAPI.Variables = []v1.CAPIVariable{{Name: "nodeCPU", Value: jsonValue(`"many"`)}}
	noK8s := base("no-k8s")
	noK8s.Spec.Profiles = []v1.ProfileAttachment{{Name: "hello-apps", Version: "1.0.0"}}
	cases := []struct {
		cluster *v1.Cluster
		want    []string
	}{
		{noClass, []string{"spec.capi.classRef", "no ClusterClass strata-system/aws"}},
		{badPool, []string{"spec.nodePools[0] (workers)", `class "gpu"`, "default-worker"}},
		{badVar, []string{"cluster API refused", "nodeCPU"}},
		{noK8s, []string{"spec.profiles"}},
	}
	for _, tc := range cases {
		if err := c.Create(ctx, tc.cluster); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		testenv.WaitUntil(t, tc.cluster.Name+" Stalled", time.Minute, func() (bool, string) {
			got := getCluster(t, c, tc.cluster.Name)
			s := conditionOf(got, v1.ConditionStalled)
			for _, w := range tc.want {
				if !strings.Contains(s.Message, w) {
					return false, s.Message
				}
			}
			return s.Status == metav1.ConditionTrue, s.Message
		})
		err := c.Get(ctx, client.ObjectKeyFromObject(tc.cluster), clusterapi.Object("Cluster"))
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: a Cluster API Cluster was created for a bad cluster: %v", tc.cluster.Name, err)
		}
	}
}

func jsonValue(s string) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(s)} }

// A Manual capi cluster shows a new Kubernetes version as the k8s layer's
// upgrade, by the provider, and its Cluster API Cluster keeps the version
// it runs until the plan is approved.
func TestAManualCAPIClusterUpgradesKubernetesOnlyWhenApproved(t *testing.T) {
	// A kubernetes 1.38.0 pack and a capi-infra 1.1.0 that uses it. Its
	// binaries are not built here: what is tested is when Strata asks
	// Cluster API for it.
	packs := t.TempDir()
	k8s := filepath.Join(packs, "kubernetes-1.38.0")
	if err := os.CopyFS(k8s, os.DirFS("../../../packs/kubernetes-1.37.2")); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(k8s, "pack.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k8s, "pack.json"), []byte(strings.ReplaceAll(string(meta), "1.37.2", "1.38.0")), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := plane(t, packs)
	ctx := context.Background()
	cl := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "manual"},
		Spec: v1.ClusterSpec{
			Provider: v1.ProviderCAPI, UpdatePolicy: v1.UpdateManual,
			CAPI:      &v1.CAPISpec{ClassRef: v1.ClassRef{Name: "local", Namespace: "strata-system"}},
			NodePools: []v1.NodePool{{Name: "workers", Count: 1, Class: "default-worker"}},
			Profiles:  []v1.ProfileAttachment{{Name: "capi-infra", Version: "1.x"}},
		},
	}
	if err := c.Create(ctx, cl); err != nil {
		t.Fatal(err)
	}
	topology := func() string {
		u := clusterapi.Object("Cluster")
		if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "manual"}, u); err != nil {
			return err.Error()
		}
		v, _, _ := unstructured.NestedString(u.Object, "spec", "topology", "version")
		return v
	}
	approve := func(what string) *v1.PendingPlan {
		var pending *v1.PendingPlan
		testenv.WaitUntil(t, "a plan "+what, 3*time.Minute, func() (bool, string) {
			got := getCluster(t, c, "manual")
			pending = got.Status.PendingPlan
			return pending != nil && strings.Contains(pending.Summary, what), fmt.Sprintf("%s %+v", got.Status.Phase, pending)
		})
		if v := topology(); v != "v1.37.2" {
			t.Errorf("with a plan waiting for approval, topology.version is %s: want v1.37.2 until approved", v)
		}
		got := getCluster(t, c, "manual")
		got.Spec.ApprovedPlan = pending.Digest
		if err := c.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		return pending
	}
	approve("to install")
	testenv.WaitUntil(t, "manual Ready", 4*time.Minute, func() (bool, string) {
		got := getCluster(t, c, "manual")
		return got.Status.Phase == v1.ClusterReady, string(got.Status.Phase)
	})

	data, err := os.ReadFile("../../../examples/capi/profile-capi-infra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	next := strings.NewReplacer("capi-infra-1.0.0", "capi-infra-1.1.0", "version: 1.0.0", "version: 1.1.0", "version: 1.37.2", "version: 1.38.0").Replace(string(data))
	nextFile := filepath.Join(t.TempDir(), "capi-infra-1.1.0.yaml")
	if err := os.WriteFile(nextFile, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Apply(t, c, nextFile, "team-a")
	pending := approve("to upgrade")
	var k8sLayer *v1.PlannedLayer
	for i, l := range pending.Layers {
		if l.Name == "kubernetes" {
			k8sLayer = &pending.Layers[i]
		}
	}
	if k8sLayer == nil || k8sLayer.FromVersion != "1.37.2" || k8sLayer.ToVersion != "1.38.0" || !strings.Contains(k8sLayer.Reason, "by the provider") {
		t.Fatalf("pending plan %+v: want the kubernetes layer upgraded 1.37.2 → 1.38.0 by the provider", pending.Layers)
	}
	testenv.WaitUntil(t, "topology.version v1.38.0 once approved", 2*time.Minute, func() (bool, string) {
		v := topology()
		return v == "v1.38.0", v
	})
}

// Without Cluster API on the management plane a capi cluster says so, and
// nothing else is made.
func TestWithoutClusterAPIACAPIClusterSaysItIsNotInstalled(t *testing.T) {
	log.SetLogger(logr.Discard())
	cfg := testenv.Management(t, "../../../config/crd/bases")
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	packs, err := pack.LoadCatalog("../../../../shared/testdata/pack-central", "../../../packs")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := controller.NewManager(cfg, controller.ManagerOptions{Packs: packs, SeveralPerProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Apply(t, c, "../../../examples/capi/profile-capi-infra.yaml", "team-a")
	cl := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "nowhere"},
		Spec: v1.ClusterSpec{
			Provider:  v1.ProviderCAPI,
			CAPI:      &v1.CAPISpec{ClassRef: v1.ClassRef{Name: "local", Namespace: "strata-system"}},
			NodePools: []v1.NodePool{{Name: "workers", Count: 1, Class: "default-worker"}},
			Profiles:  []v1.ProfileAttachment{{Name: "capi-infra", Version: "1.0.0"}},
		},
	}
	if err := c.Create(ctx, cl); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "nowhere Stalled", time.Minute, func() (bool, string) {
		s := conditionOf(getCluster(t, c, "nowhere"), v1.ConditionStalled)
		return s.Status == metav1.ConditionTrue && strings.Contains(s.Message, "Cluster API is not installed on the management plane (no CRD clusters.cluster.x-k8s.io"), s.Message
	})
}
