// Package up runs the whole product on one machine: a local management
// plane (etcd and kube-apiserver from the binaries cache) with Strata's
// CRDs, the controllers in this process, and the local cluster provider.
// Its state lives in one folder; running it again resumes everything.
package up

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/config/crd"
	"strata.dev/strata/config/flowcontrol"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/dashboard"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/registry"
)

// Options configure `strata up`.
type Options struct {
	// Dir holds the state; DefaultDir() when empty.
	Dir string
	// Packs are the folders of packs the profiles use.
	Packs []string
	// MetricsAddr, HealthAddr and DashboardAddr listen on loopback; a free
	// port when empty.
	MetricsAddr, HealthAddr, DashboardAddr string
	// Binaries of the management plane; controlplane.FindBinaries when empty.
	Binaries controlplane.Binaries
	// LocalBinaries finds a local cluster's Kubernetes build by version;
	// controlplane.FindBinaries when nil.
	LocalBinaries func(version string) controlplane.Binaries
	// Out receives progress and the addresses to use.
	Out io.Writer
	// Log receives the controllers' diagnostics; discarded when nil.
	Log *slog.Logger
	// CAPI runs Cluster API (built by `make capi`) and Strata's local
	// providers beside the management plane, for Clusters of provider capi.
	CAPI bool
}

// DefaultDir is ~/.strata.
func DefaultDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".strata"
	}
	return filepath.Join(home, ".strata")
}

// ErrRunning says another `strata up` holds the folder.
type ErrRunning struct {
	Dir string
	PID int
}

func (e *ErrRunning) Error() string {
	return fmt.Sprintf("strata up is already running on %s (pid %d): use it, or stop it with `strata down --dir %s`", e.Dir, e.PID, e.Dir)
}

// Run starts everything and blocks until ctx ends, then stops it all,
// keeping the state for the next run.
func Run(ctx context.Context, opts Options) error {
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return err
	}
	unlock, err := lock(opts.Dir)
	if err != nil {
		return err
	}
	defer unlock()

	bins := opts.Binaries
	if bins.Dir == "" {
		bins = controlplane.FindBinaries("")
	}
	catalog, err := pack.LoadCatalog(opts.Packs...)
	if err != nil {
		return err
	}
	started := time.Now()
	fmt.Fprintf(opts.Out, "Starting the management plane (state in %s)...\n", opts.Dir)
	mgmt, err := controlplane.Start(ctx, controlplane.Options{Name: "strata", Dir: filepath.Join(opts.Dir, "management"), Binaries: bins, Durable: true})
	if err != nil {
		return err
	}
	defer mgmt.Stop()
	cfg := mgmt.RESTConfig()
	if err := installCRDs(ctx, cfg); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	// A management plane that agents join is ready for many of them.
	if err := flowcontrol.Apply(ctx, cfg); err != nil {
		return fmt.Errorf("apply the agents' flow control: %w", err)
	}
	kubeconfig := filepath.Join(opts.Dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, mgmt.Kubeconfig(), 0o600); err != nil {
		return err
	}
	capiLine := ""
	if opts.CAPI {
		// Before the controllers, so that they watch the Cluster API
		// Clusters they own.
		fmt.Fprintln(opts.Out, "Starting Cluster API and Strata's local providers...")
		log := opts.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		a, err := startClusterAPI(ctx, cfg, kubeconfig, opts.Dir, log)
		if err != nil {
			return fmt.Errorf("cluster API: %w", err)
		}
		defer a.stop()
		capiLine = a.lines()
	}
	metricsAddr, err := loopbackAddr(opts.MetricsAddr)
	if err != nil {
		return err
	}
	healthAddr, err := loopbackAddr(opts.HealthAddr)
	if err != nil {
		return err
	}
	// The dashboard acts with the management plane's admin credentials for
	// requests without a token: it listens on loopback only, for this
	// machine's user, and answers only to its loopback names.
	listener, err := net.Listen("tcp", cmp.Or(opts.DashboardAddr, "127.0.0.1:0"))
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	dashboardAddr := listener.Addr().String()
	board, err := dashboard.New(dashboard.Options{Config: cfg, Local: true, Listen: dashboardAddr,
		PackFiles: registry.PackFiles{CacheDir: filepath.Join(opts.Dir, "pack-cache"), Folders: catalog}})
	if err != nil {
		_ = listener.Close()
		return err
	}
	web := &http.Server{Handler: board.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = web.Serve(listener) }()
	defer web.Close()
	packRegistry, err := startRegistry(filepath.Join(opts.Dir, "registry"), opts.Out)
	if err != nil {
		return err
	}
	defer packRegistry.Stop()
	provider := &local.Provider{Root: filepath.Join(opts.Dir, "clusters"), Binaries: opts.LocalBinaries, Log: opts.Log}
	defer provider.StopAll()
	mgr, err := controller.NewManager(cfg, controller.ManagerOptions{
		Packs: catalog, MetricsAddr: metricsAddr, HealthAddr: healthAddr, Local: provider,
		PackCacheDir: filepath.Join(opts.Dir, "pack-cache"), // the dashboard reads logos from it
	})
	if err != nil {
		return err
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	if !mgr.GetCache().WaitForCacheSync(mgrCtx) {
		stopMgr()
		return errors.Join(errors.New("the controllers did not start"), <-done)
	}
	packsLine := ""
	if packRegistry != nil {
		if packsLine, err = packRegistry.publish(ctx, mgr.GetClient(), opts.Packs); err != nil {
			stopMgr()
			return errors.Join(err, <-done)
		}
	}
	fmt.Fprintf(opts.Out, "Management plane ready in %s.\n  kubeconfig: %s   (export KUBECONFIG=%s)\n  dashboard:  http://%s/\n  metrics:    http://%s/metrics\n  health:     http://%s/readyz\n%s%sStop with Ctrl-C or `strata down --dir %s`.\n",
		time.Since(started).Round(100*time.Millisecond), kubeconfig, kubeconfig, dashboardAddr, metricsAddr, healthAddr, packsLine, capiLine, opts.Dir)
	err = <-done
	fmt.Fprintln(opts.Out, "Stopping: controllers, local clusters, management plane. State kept for the next `strata up`.")
	return err
}

// installCRDs applies the embedded CRDs and waits until they are served,
// and creates the shared profile namespace.
func installCRDs(ctx context.Context, cfg *rest.Config) error {
	scheme := controller.Scheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	files, err := fs.Glob(crd.Bases, "bases/*.yaml")
	if err != nil {
		return err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := crd.Bases.ReadFile(f)
		if err != nil {
			return err
		}
		obj := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		crds = append(crds, obj)
	}
	if err := crd.Apply(ctx, c, "strata", crds...); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controller.SharedNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// loopbackAddr returns addr, or a free loopback port when empty.
func loopbackAddr(addr string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// lock takes the folder for this process: an exclusive lock on DIR/lock,
// with the pid written beside it for `strata down` and for the message a
// second `strata up` gives.
func lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := RunningPID(dir)
		return nil, &ErrRunning{Dir: dir, PID: pid}
	}
	pidFile := filepath.Join(dir, "strata.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		os.Remove(pidFile)
		f.Close()
	}, nil
}

// RunningPID is the pid of the `strata up` holding dir, or 0 when none.
func RunningPID(dir string) (int, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, nil // nobody holds it
	}
	data, err := os.ReadFile(filepath.Join(dir, "strata.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// Down stops the `strata up` running on dir and waits until it has
// stopped; purge then removes the state.
func Down(ctx context.Context, dir string, purge bool, out io.Writer) error {
	pid, err := RunningPID(dir)
	if err != nil {
		return err
	}
	if pid == 0 {
		fmt.Fprintf(out, "strata up is not running on %s\n", dir)
	} else {
		fmt.Fprintf(out, "Stopping strata up (pid %d)...\n", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stop pid %d: %w", pid, err)
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			p, err := RunningPID(dir)
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil // its pid file is gone, its lock not yet released: stopping
			}
			return p == 0, err
		})
		if err != nil {
			return fmt.Errorf("strata up (pid %d) did not stop: %w", pid, err)
		}
		fmt.Fprintln(out, "Stopped.")
	}
	if purge {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Fprintf(out, "Removed %s\n", dir)
	}
	return nil
}
