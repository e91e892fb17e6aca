// Package controlplane runs real Kubernetes control planes on this machine:
// etcd and kube-apiserver, optionally kube-controller-manager, kube-scheduler
// and kwok for simulated nodes. It powers the test bed and the local cluster
// provider alike.
package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"strata.dev/strata/internal/version"
)

// BinDirEnv names the environment variable that points at a folder holding
// the binaries directly (kube-apiserver, etcd, ...), overriding the search.
const BinDirEnv = "STRATA_KUBE_BIN_DIR"

// Binary names, as hack/kube/build.sh writes them.
const (
	APIServerBinary         = "kube-apiserver"
	ControllerManagerBinary = "kube-controller-manager"
	SchedulerBinary         = "kube-scheduler"
	EtcdBinary              = "etcd"
	KwokBinary              = "kwok"
	// StagesDir holds kwok's "fast" node and pod stages.
	StagesDir = "stages"
)

// Binaries is a folder of control-plane binaries of one Kubernetes version.
type Binaries struct {
	Dir     string
	Version string
}

// Path returns the path of a binary, or an error that tells how to build it.
func (b Binaries) Path(name string) (string, error) {
	p := filepath.Join(b.Dir, name)
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s %s not found in %s: run `make kube` to build it", name, b.Version, b.Dir)
	}
	if !st.IsDir() && st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not executable: run `make kube` to rebuild it", p)
	}
	return p, nil
}

// Check reports every binary that is missing, in one error.
func (b Binaries) Check(names ...string) error {
	var errs []error
	for _, n := range names {
		if _, err := b.Path(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FindBinaries locates the binaries of a Kubernetes version (the default
// when empty). It looks, in order, at $STRATA_KUBE_BIN_DIR, at kube/<version>
// beside the running executable (make build puts strata in bin/, the cache is
// bin/kube/), and at bin/kube/<version> in the Strata source tree that holds
// the working directory (tests run there). When none exists it returns the
// most likely place, so that errors name where the binaries were expected.
func FindBinaries(k8sVersion string) Binaries {
	if k8sVersion == "" {
		k8sVersion = version.Kubernetes
	}
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return Binaries{Dir: dir, Version: k8sVersion}
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "kube", k8sVersion))
	}
	if root, ok := sourceRoot(); ok {
		candidates = append(candidates, filepath.Join(root, "bin", "kube", k8sVersion))
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, APIServerBinary)); err == nil {
			return Binaries{Dir: c, Version: k8sVersion}
		}
	}
	if len(candidates) == 0 {
		return Binaries{Dir: filepath.Join("bin", "kube", k8sVersion), Version: k8sVersion}
	}
	return Binaries{Dir: candidates[len(candidates)-1], Version: k8sVersion}
}

// sourceRoot walks up from the working directory to Strata's go.mod.
func sourceRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module strata.dev/strata\n") {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
