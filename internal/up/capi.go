package up

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	examplescapi "strata.dev/strata/examples/capi"
	"strata.dev/strata/internal/capi"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/provider/capilocal"
)

// clusterAPI is Cluster API's manager and Strata's local providers, each a
// supervised process beside the management plane.
type clusterAPI struct {
	manager *capi.Manager
	dir     string
	args    []string
	log     *slog.Logger

	mu        sync.Mutex
	providers *controlplane.Process
}

// startClusterAPI installs and runs Cluster API, runs `strata
// capi-providers` as a process of its own, and applies the ClusterClass
// local; both processes are started again if they die.
func startClusterAPI(ctx context.Context, cfg *rest.Config, kubeconfig, dir string, log *slog.Logger) (*clusterAPI, error) {
	capiDir := filepath.Join(dir, "capi")
	m, err := capi.Start(ctx, capi.Options{Config: cfg, Kubeconfig: kubeconfig, Dir: capiDir, Log: log})
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		m.Stop()
		return nil, err
	}
	ports, err := controlplane.FreePorts(1)
	if err != nil {
		m.Stop()
		return nil, err
	}
	health := "127.0.0.1:" + strconv.Itoa(ports[0])
	a := &clusterAPI{manager: m, dir: capiDir, log: log,
		args: []string{exe, "capi-providers", "--kubeconfig", kubeconfig, "--dir", filepath.Join(dir, "capi-clusters"), "--health-addr", health}}
	if err := a.startProviders(ctx, health); err != nil {
		a.stop()
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: capilocal.Scheme()})
	if err != nil {
		a.stop()
		return nil, err
	}
	if err := capi.Apply(ctx, c, examplescapi.ClusterClassLocal, nil); err != nil {
		a.stop()
		return nil, fmt.Errorf("ClusterClass local: %w", err)
	}
	go m.Supervise(ctx, 2*time.Second)
	go a.superviseProviders(ctx, health)
	return a, nil
}

func (a *clusterAPI) startProviders(ctx context.Context, health string) error {
	p, err := controlplane.StartProcess("capi-providers", a.args[0], a.dir, a.args[1:])
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.providers = p
	a.mu.Unlock()
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return p.WaitFor(waitCtx, "/readyz", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+health+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

func (a *clusterAPI) superviseProviders(ctx context.Context, health string) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		a.mu.Lock()
		dead := a.providers != nil && a.providers.Exited()
		a.mu.Unlock()
		if !dead {
			return
		}
		a.log.Warn("Strata's Cluster API providers stopped; starting them again", "log", a.providersLog())
		if err := a.startProviders(ctx, health); err != nil {
			a.log.Error("Strata's Cluster API providers did not start again", "err", err)
		}
	}, 2*time.Second)
}

func (a *clusterAPI) providersLog() string { return filepath.Join(a.dir, "capi-providers.log") }

// lines says where the logs are, for the ready message.
func (a *clusterAPI) lines() string {
	return fmt.Sprintf("  cluster API: %s (log %s); local providers: log %s\n", capi.Version, a.manager.LogPath(), a.providersLog())
}

// stop ends the providers (their control planes stop with them) and Cluster
// API's manager.
func (a *clusterAPI) stop() {
	a.mu.Lock()
	if a.providers != nil {
		a.providers.Stop()
		a.providers = nil
	}
	a.mu.Unlock()
	a.manager.Stop()
}
