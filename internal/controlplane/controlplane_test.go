package controlplane_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/version"
)

func TestDeploymentBecomesAvailableOnSimulatedNodes(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 2})

	// The handed-back kubeconfig is what users get: build the client from it.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()

	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if sv.GitVersion != version.Kubernetes {
		t.Errorf("server version %q, want %q (binaries built without version stamps?)", sv.GitVersion, version.Kubernetes)
	}

	deployAndWaitAvailable(t, cs, "web", 3)

	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Spec.NodeName, "node-") {
			t.Errorf("pod %s: phase %s on node %q, want Running on a simulated node", p.Name, p.Status.Phase, p.Spec.NodeName)
		}
	}
}

func TestNodesScaleUpAndDown(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	cs, err := cp.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, n := range []int{3, 1} {
		if err := cp.SetNodes(ctx, n); err != nil {
			t.Fatal(err)
		}
		// Deleted nodes may linger until the API server finishes; wait.
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err == nil && len(list.Items) == n, err
		})
		if err != nil {
			t.Fatalf("scale to %d nodes: %v", n, err)
		}
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	start := func() *controlplane.ControlPlane {
		return startControlPlane(t, controlplane.Options{Name: "resume", Dir: dir})
	}
	cp := start()
	cs, _ := cp.Clientset()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pids := cp.PIDs()
	cp.Stop()
	for name, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
	}

	cp = start()
	cs, _ = cp.Clientset()
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("config map lost across restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("data = %v, want k=v", got.Data)
	}
}

func TestMissingBinaryErrorSaysHowToBuild(t *testing.T) {
	t.Parallel()
	_, err := controlplane.Start(t.Context(), controlplane.Options{
		Dir:      t.TempDir(),
		Binaries: controlplane.Binaries{Dir: t.TempDir(), Version: "v1.37.2"},
	})
	if err == nil || !strings.Contains(err.Error(), "run `make kube`") || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("error = %v, want one naming kube-apiserver and `make kube`", err)
	}
}

func TestProcessLogsKeptInDataDir(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{})
	for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
		if _, err := os.Stat(filepath.Join(cp.Dir(), name)); err != nil {
			t.Errorf("log %s: %v", name, err)
		}
	}
}

// processAlive asks the kernel whether pid exists (signal 0 checks only).
func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// A control plane started again after its API server died — nothing could
// be released — runs pods at once: the new kwok takes the simulated nodes'
// leases without waiting for those of the kwok that is gone to expire.
func TestRestartAfterACrashRunsPodsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	start := func() *controlplane.ControlPlane {
		return startControlPlane(t, controlplane.Options{
			Name: "crash", Dir: dir, ControllerManager: true, Scheduler: true,
			NodePools: []controlplane.NodePool{{Name: "w", Count: 2}},
		})
	}
	cp := start()
	cs, _ := cp.Clientset()
	leases := func() map[string]*coordinationv1.Lease {
		out := map[string]*coordinationv1.Lease{}
		for _, node := range []string{"w-0", "w-1"} {
			if l, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node, metav1.GetOptions{}); err == nil && l.Spec.HolderIdentity != nil {
				out[node] = l
			}
		}
		return out
	}
	var old map[string]*coordinationv1.Lease
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		old = leases()
		return len(old) == 2, nil
	}); err != nil {
		t.Fatalf("kwok holds no lease of the nodes: %v", err)
	}

	if err := syscall.Kill(cp.PIDs()["kube-apiserver"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cp.Stop()
	cp = start()
	cs, _ = cp.Clientset()

	var now map[string]*coordinationv1.Lease
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		now = leases()
		for node, l := range now {
			if *l.Spec.HolderIdentity == *old[node].Spec.HolderIdentity {
				return false, nil
			}
		}
		return len(now) == 2, nil
	}); err != nil {
		t.Fatalf("the restarted kwok does not hold the nodes' leases: %v", err)
	}
	for node, l := range now {
		expiry := old[node].Spec.RenewTime.Add(time.Duration(*old[node].Spec.LeaseDurationSeconds) * time.Second)
		// Seen as soon as it changed hands, its renew time is when it did.
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Before(expiry) {
			t.Errorf("node %s: lease taken at %v, not before the dead kwok's lease expired at %v", node, l.Spec.RenewTime, expiry)
		}
	}

	deployAndWaitAvailable(t, cs, "after-crash", 2)
}

// deployAndWaitAvailable creates a Deployment of n replicas in default and
// waits until it is Available with n ready replicas.
func deployAndWaitAvailable(t *testing.T, cs *kubernetes.Clientset, name string, n int32) {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
					Containers:   []corev1.Container{{Name: name, Image: "nginx:1.27"}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last *appsv1.Deployment
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		last, err = cs.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range last.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return last.Status.ReadyReplicas == n, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("deployment %s not Available with %d ready replicas: %v; status %+v", name, n, err, last.Status)
	}
}

// startControlPlane starts a control plane that stops when the test ends.
func startControlPlane(t *testing.T, opts controlplane.Options) *controlplane.ControlPlane {
	t.Helper()
	cp, err := controlplane.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	return cp
}

// An API server killed and started again serves at the same address, with
// its data, to the clients that had it: an API server crash as a fleet
// manager meets it.
func TestAPIServerCrashAndRestartKeepsItsAddress(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t, controlplane.Options{Name: "crash", Dir: t.TempDir()})
	cs, _ := cp.Clientset()
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apiserver := cp.PIDs()[controlplane.APIServerBinary]
	if err := cp.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	if processAlive(apiserver) {
		t.Fatal("kube-apiserver still running after KillAPIServer")
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err == nil {
		t.Fatal("a killed API server answered")
	}
	if err := cp.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("the same client after the restart: %v", err)
	}
	if pid := cp.PIDs()[controlplane.APIServerBinary]; pid == apiserver || pid == 0 {
		t.Errorf("kube-apiserver pid %d after the restart (was %d)", pid, apiserver)
	}
}
