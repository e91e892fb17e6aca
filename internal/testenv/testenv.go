// Package testenv gives tests real Kubernetes API servers: a management
// plane with Strata's CRDs (controller-runtime's envtest on our own binaries)
// and workload clusters with simulated nodes (the controlplane launcher).
// Everything started is stopped and its data removed when the test ends,
// whether it passed or not.
package testenv

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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/internal/controlplane"
)

// Management starts a management API server (etcd + kube-apiserver) with
// the CRDs found in crdDirs installed, and returns an admin configuration.
func Management(t testing.TB, crdDirs ...string) *rest.Config {
	t.Helper()
	bins := controlplane.FindBinaries("")
	if err := bins.Check(controlplane.EtcdBinary, controlplane.APIServerBinary); err != nil {
		t.Fatalf("management plane: %v", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: bins.Dir,
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: len(crdDirs) > 0,
	}
	cfg, err := env.Start()
	if err != nil {
		// Start may fail after the processes run (a CRD the API server
		// refuses); stop them, or they outlive the test.
		_ = env.Stop()
		t.Fatalf("management plane: start envtest with binaries in %s: %v", bins.Dir, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("management plane: stop: %v", err)
		}
	})
	return cfg
}

// ClusterOptions shapes a workload cluster.
type ClusterOptions struct {
	// Name of the cluster; the test name when empty.
	Name string
	// Nodes is the number of kwok nodes. With Nodes > 0 the cluster also runs
	// kube-controller-manager and kube-scheduler, so workloads become Ready.
	Nodes int
	// Timeout bounds each start-up wait.
	Timeout time.Duration
}

// WorkloadCluster starts a workload cluster on free loopback ports. Its logs
// are printed when the test fails, since they usually say why.
func WorkloadCluster(t testing.TB, opts ClusterOptions) *controlplane.ControlPlane {
	t.Helper()
	if opts.Name == "" {
		opts.Name = filepath.Base(t.Name())
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Name:              opts.Name,
		Dir:               dir,
		ControllerManager: opts.Nodes > 0,
		Scheduler:         opts.Nodes > 0,
		Nodes:             opts.Nodes,
		StartTimeout:      opts.Timeout,
	})
	if err != nil {
		t.Fatalf("workload cluster: %v", err)
	}
	t.Cleanup(func() {
		cp.Stop()
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	return cp
}

// dumpLogs prints the tail of each process log of a failed test's cluster.
func dumpLogs(t testing.TB, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		if len(data) > 1500 {
			data = data[len(data)-1500:]
		}
		t.Logf("--- %s (tail) ---\n%s", filepath.Base(l), data)
	}
}

// Kubeconfig renders a kubeconfig for a client configuration, for tests
// that drive the CLI against a management plane.
func Kubeconfig(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// CreateCRD creates a namespaced kind of any content, served at version
// v1, as a hand would behind Strata's back.
func CreateCRD(t testing.TB, cfg *rest.Config, group, kind, plural string) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(fmt.Appendf(nil, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[3]s.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: %[3]s, singular: %[4]s, kind: %[2]s}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`, group, kind, plural, strings.ToLower(kind)), &crd.Object); err != nil {
		t.Fatal(err)
	}
	crds := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// WaitUntil checks cond every 200 ms until it holds, failing the test
// after timeout with what it waited for and what cond last said.
func WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, why := cond()
		last = why
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; last: %s", what, err, last)
	}
}
