package version

import (
	"os"
	"regexp"
	"testing"
)

// The binaries Strata looks for are keyed by Kubernetes; hack/kube/go.mod
// decides what gets built. They must name the same release.
func TestKubernetesMatchesTheBuildModule(t *testing.T) {
	data, err := os.ReadFile("../../hack/kube/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("hack/kube/go.mod: no `require k8s.io/kubernetes vX.Y.Z` line")
	}
	if string(m[1]) != Kubernetes {
		t.Errorf("version.Kubernetes = %s, hack/kube/go.mod builds %s", Kubernetes, m[1])
	}
}

func TestStringShowsVersionAndShortCommit(t *testing.T) {
	got := Info{Version: "v1.2.3", Commit: "0123456789abcdef", Modified: true, GoVersion: "go1.26.8", Platform: "linux/amd64"}.String()
	want := "strata v1.2.3 (commit 0123456789ab-dirty, go1.26.8, linux/amd64)"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
