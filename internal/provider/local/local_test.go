package local_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/version"
)

func clientFor(t *testing.T, kubeconfig []byte) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// Moving a local cluster's k8s layer to another Kubernetes version restarts
// its control plane on that version's build, with its etcd data kept. Only
// one build exists on this machine, so a second version is served by it
// under another name: what is checked is the move, not the binaries.
func TestAnotherKubernetesVersionRestartsOnItsBuildKeepingData(t *testing.T) {
	t.Parallel()
	var asked []string
	p := &local.Provider{Root: t.TempDir(), Binaries: func(v string) controlplane.Binaries {
		asked = append(asked, v)
		return controlplane.FindBinaries("")
	}}
	t.Cleanup(p.StopAll)
	ctx := context.Background()
	spec := local.Spec{Key: "team/lab", KubernetesVersion: "1.37.2", Pools: []controlplane.NodePool{{Name: "workers", Count: 1}}}
	st, err := p.Ensure(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Restarted {
		t.Error("first Ensure: Restarted is false, want true (a control plane was started)")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := clientFor(t, st.Kubeconfig).CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := p.PIDs()["team/lab"]

	// The same spec again changes nothing.
	if st, err = p.Ensure(ctx, spec); err != nil || st.Restarted {
		t.Fatalf("Ensure of an unchanged spec: restarted %v, err %v", st.Restarted, err)
	}

	spec.KubernetesVersion = "1.37.3"
	if st, err = p.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if !st.Restarted {
		t.Error("Ensure on another version: Restarted is false, want true")
	}
	if got := asked[len(asked)-1]; got != "v1.37.3" {
		t.Errorf("the provider asked for the build of %q, want v1.37.3", got)
	}
	after := p.PIDs()["team/lab"]
	for name, pid := range before {
		if after[name] == pid {
			t.Errorf("%s kept pid %d across the version change: not restarted", name, pid)
		}
	}
	got, err := clientFor(t, st.Kubeconfig).CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("data after the version change: %v %v", got, err)
	}
}

// A Kubernetes version that is not built here is refused with what to do.
func TestAVersionNotBuiltSaysHowToBuildIt(t *testing.T) {
	t.Parallel()
	p := &local.Provider{Root: t.TempDir()}
	_, err := p.Ensure(context.Background(), local.Spec{Key: "team/old", KubernetesVersion: "1.30.0"})
	if err == nil {
		t.Fatal("Ensure on Kubernetes 1.30.0, which is not built: no error")
	}
	for _, want := range []string{"kubernetes 1.30.0 is not built here", version.Kubernetes, "hack/kube/go.mod", "make kube"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
