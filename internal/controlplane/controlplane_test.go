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

	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
					Containers:   []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last *appsv1.Deployment
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		last, err = cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range last.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return last.Status.ReadyReplicas == 3, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("deployment not Available with 3 ready replicas: %v; status %+v", err, last.Status)
	}

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
		cp, err := controlplane.Start(ctx, controlplane.Options{Name: "resume", Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cp.Stop)
		return cp
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
