package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/version"
)

func TestManagementPlaneServesTheAPI(t *testing.T) {
	t.Parallel()
	cfg := testenv.Management(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if sv.GitVersion != version.Kubernetes {
		t.Errorf("management plane runs %s, want %s", sv.GitVersion, version.Kubernetes)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A management plane whose CRDs the API server refuses fails the test and
// leaves no process behind.
func TestManagementPlaneStartFailureLeavesNothingRunning(t *testing.T) {
	// Not parallel: it counts this test binary's envtest processes.
	dir := t.TempDir()
	bad := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bads.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: bads, kind: Bad}
  versions: [{name: v1, served: true, storage: false, schema: {openAPIV3Schema: {type: object}}}]
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	before := envtestProcesses(t)
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		testenv.Management(ft, dir)
	}()
	if !ft.failed {
		t.Fatal("a refused CRD did not fail the management plane")
	}
	if after := envtestProcesses(t); after > before {
		t.Errorf("%d envtest processes left running", after-before)
	}
}

// fatalRecorder turns Fatalf into a recorded failure plus a panic, so a
// test can watch another helper fail.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = true
	panic(fmt.Sprintf(format, args...))
}

// envtestProcesses counts this test binary's child processes that envtest
// started (their command line holds its temporary folder prefix).
func envtestProcesses(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := fmt.Sprintf("PPid:\t%d\n", os.Getpid())
	n := 0
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), "k8s_test_framework_") {
			continue
		}
		if status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status")); err == nil && strings.Contains(string(status), parent) {
			n++
		}
	}
	return n
}
