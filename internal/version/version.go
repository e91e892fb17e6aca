// Package version tells which Strata build is running and which Kubernetes
// release its control-plane binaries come from.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is Strata's release, stamped by the build with
// -ldflags "-X strata.dev/strata/internal/version.Version=v1.2.3".
var Version = "v0.1.0-dev"

// Kubernetes is the Kubernetes release whose binaries Strata builds and runs
// for its test bed and local clusters. It must equal the k8s.io/kubernetes
// version pinned in hack/kube/go.mod; a test keeps the two in step.
const Kubernetes = "v1.37.2"

// Info describes the running build.
type Info struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
	Kubernetes string `json:"kubernetes"`
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{
		Version:    Version,
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		Kubernetes: Kubernetes,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	return info
}

// String renders the information on one line, as `strata version` prints it.
func (i Info) String() string {
	commit := i.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	if i.Modified {
		commit += "-dirty"
	}
	return fmt.Sprintf("strata %s (commit %s, %s, %s)", i.Version, commit, i.GoVersion, i.Platform)
}
