// Package local runs the clusters of the `local` provider: each a real
// control plane (etcd, kube-apiserver, controller-manager, scheduler) with
// kwok's simulated nodes, on the machine that runs `strata up`, its data
// kept in a folder of its own so that it survives restarts.
package local

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/version"
)

// Provider starts, scales, upgrades, supervises and deletes local clusters.
// It is safe for concurrent use; one call per cluster runs at a time.
type Provider struct {
	// Root holds one folder per cluster: <Root>/<namespace>/<name>.
	Root string
	// Binaries finds the Kubernetes build of a version ("v1.37.2");
	// controlplane.FindBinaries when nil.
	Binaries func(version string) controlplane.Binaries
	// Log receives restarts and other news; discarded when nil.
	Log *slog.Logger

	mu       sync.Mutex
	clusters map[string]*cluster
}

type cluster struct {
	mu      sync.Mutex // held while the cluster starts, scales or stops
	cp      *controlplane.ControlPlane
	version string
	pools   []controlplane.NodePool
}

// Spec is what a local cluster should be.
type Spec struct {
	// Key is "<namespace>/<name>" of the Cluster.
	Key string
	// KubernetesVersion from the k8s layer, e.g. "1.37.2".
	KubernetesVersion string
	Pools             []controlplane.NodePool
	// MachineNodes runs kwok without nodes of its own: Cluster API's
	// machines make them (Pools is then ignored).
	MachineNodes bool
	// APIServerPort keeps the API server on a port across restarts; a free
	// one when zero.
	APIServerPort int
}

// Status is what a local cluster is.
type Status struct {
	Kubeconfig []byte
	// Server is the API server's URL.
	Server string
	// Restarted says the control plane was (re)started by this call.
	Restarted bool
}

func (p *Provider) entry(key string) *cluster {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clusters == nil {
		p.clusters = map[string]*cluster{}
	}
	c, ok := p.clusters[key]
	if !ok {
		c = &cluster{}
		p.clusters[key] = c
	}
	return c
}

func (p *Provider) dir(key string) string {
	return filepath.Join(p.Root, filepath.FromSlash(key))
}

func (p *Provider) binaries(v string) controlplane.Binaries {
	if p.Binaries != nil {
		return p.Binaries(v)
	}
	return controlplane.FindBinaries(v)
}

func (p *Provider) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Ensure makes the cluster run: started (or resumed from its data) on the
// build of its Kubernetes version, restarted on another build when the
// version changed — etcd data kept — and scaled to its node pools.
func (p *Provider) Ensure(ctx context.Context, spec Spec) (Status, error) {
	v := "v" + strings.TrimPrefix(spec.KubernetesVersion, "v")
	bins := p.binaries(v)
	if err := bins.Check(controlplane.EtcdBinary, controlplane.APIServerBinary, controlplane.ControllerManagerBinary,
		controlplane.SchedulerBinary, controlplane.KwokBinary, controlplane.StagesDir); err != nil {
		if v != "v"+strings.TrimPrefix(version.Kubernetes, "v") {
			return Status{}, fmt.Errorf("kubernetes %s is not built here (this Strata builds %s with `make kube`; for %s, pin k8s.io/kubernetes %s in hack/kube/go.mod and run `make kube`): %w",
				spec.KubernetesVersion, version.Kubernetes, spec.KubernetesVersion, v, err)
		}
		return Status{}, err
	}
	c := p.entry(spec.Key)
	c.mu.Lock()
	defer c.mu.Unlock()
	var st Status
	if c.cp != nil && (c.version != v || len(c.cp.Exited()) > 0) {
		if exited := c.cp.Exited(); len(exited) > 0 {
			p.log().Info("restarting local cluster", "cluster", spec.Key, "exited", strings.Join(exited, ","))
		} else {
			p.log().Info("moving local cluster to another Kubernetes build", "cluster", spec.Key, "from", c.version, "to", v)
		}
		c.cp.Stop()
		c.cp = nil
	}
	if c.cp == nil {
		cp, err := controlplane.Start(ctx, controlplane.Options{
			Name: strings.ReplaceAll(spec.Key, "/", "-"), Dir: p.dir(spec.Key), Binaries: bins,
			ControllerManager: true, Scheduler: true, NodePools: spec.Pools, Durable: true,
			Kwok: spec.MachineNodes, APIServerPort: spec.APIServerPort,
		})
		if err != nil {
			return Status{}, err
		}
		c.cp, c.version, c.pools, st.Restarted = cp, v, slices.Clone(spec.Pools), true
	}
	if !spec.MachineNodes && !slices.Equal(c.pools, spec.Pools) {
		if err := c.cp.SetNodePools(ctx, spec.Pools); err != nil {
			return Status{}, fmt.Errorf("scale nodes: %w", err)
		}
		c.pools = slices.Clone(spec.Pools)
	}
	st.Kubeconfig, st.Server = c.cp.Kubeconfig(), c.cp.Server()
	return st, nil
}

// Delete stops the cluster's processes and removes its data.
func (p *Provider) Delete(key string) error {
	c := p.entry(key)
	c.mu.Lock()
	if c.cp != nil {
		c.cp.Stop()
		c.cp = nil
	}
	c.mu.Unlock()
	p.mu.Lock()
	delete(p.clusters, key)
	p.mu.Unlock()
	return os.RemoveAll(p.dir(key))
}

// PIDs lists the processes of every running cluster, by cluster.
func (p *Provider) PIDs() map[string]map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[string]int{}
	for key, c := range p.clusters {
		c.mu.Lock()
		if c.cp != nil {
			out[key] = c.cp.PIDs()
		}
		c.mu.Unlock()
	}
	return out
}

// Supervise restarts, every interval until ctx ends, the clusters one of
// whose processes stopped; restart calls back with the cluster's key (the
// caller ensures it again, which writes its new kubeconfig).
func (p *Provider) Supervise(ctx context.Context, interval time.Duration, restart func(key string)) {
	wait.UntilWithContext(ctx, func(context.Context) {
		p.mu.Lock()
		var dead []string
		for key, c := range p.clusters {
			if c.mu.TryLock() {
				if c.cp != nil && len(c.cp.Exited()) > 0 {
					dead = append(dead, key)
				}
				c.mu.Unlock()
			}
		}
		p.mu.Unlock()
		for _, key := range dead {
			restart(key)
		}
	}, interval)
}

// StopAll stops every cluster and keeps its data, for the next `strata up`.
func (p *Provider) StopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clusters {
		c.mu.Lock()
		if c.cp != nil {
			c.cp.Stop()
			c.cp = nil
		}
		c.mu.Unlock()
	}
}
