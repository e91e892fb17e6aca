package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	examplescapi "strata.dev/strata/examples/capi"
	"strata.dev/strata/internal/capi"
	"strata.dev/strata/internal/provider/capilocal"
	"strata.dev/strata/internal/provider/local"
)

// ClusterAPI is Cluster API's own manager and Strata's local providers
// running on a management plane, with the `local` ClusterClass of
// examples/capi applied.
type ClusterAPI struct {
	Manager *capi.Manager
	// Local runs the clusters' control planes; Root holds their data.
	Local *local.Provider
}

// StartClusterAPI runs Cluster API (built by `make capi`) and the local
// providers on the management plane cfg (which must have Strata's CRDs)
// until the test ends. Their logs are printed when the test fails.
func StartClusterAPI(t testing.TB, cfg *rest.Config) *ClusterAPI {
	t.Helper()
	if err := capi.FindBuild().Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	m, err := capi.Start(ctx, capi.Options{Config: cfg, Kubeconfig: Kubeconfig(t, cfg), Dir: filepath.Join(dir, "capi")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			dumpLogs(t, filepath.Join(dir, "capi"))
		}
	})
	go m.Supervise(ctx, time.Second)

	provider := &local.Provider{Root: filepath.Join(dir, "clusters")}
	t.Cleanup(provider.StopAll)
	mgr, err := capilocal.NewManager(cfg, capilocal.Options{Local: provider, SuperviseEvery: 500 * time.Millisecond, SeveralPerProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("local providers: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: capilocal.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := capi.Apply(ctx, c, examplescapi.ClusterClassLocal, nil); err != nil {
		t.Fatalf("ClusterClass local: %v", err)
	}
	return &ClusterAPI{Manager: m, Local: provider}
}

// Apply server-side applies every object of a YAML file; objects that name
// no namespace go to namespace, when given (Namespaces themselves excepted).
func Apply(t testing.TB, c client.Client, path, namespace string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = capi.Apply(context.Background(), c, data, func(u *unstructured.Unstructured) error {
		if u.GetNamespace() == "" && namespace != "" && u.GetKind() != "Namespace" {
			u.SetNamespace(namespace)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// WorkloadClient reaches a workload cluster only through the kubeconfig
// Secret its provider wrote (namespace/name, key), as a user of it would.
func WorkloadClient(t testing.TB, c client.Client, namespace, name, key string) *kubernetes.Clientset {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[key])
	if err != nil {
		t.Fatalf("secret %s/%s: %v", namespace, name, err)
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
