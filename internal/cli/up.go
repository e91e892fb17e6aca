package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"strata.dev/strata/internal/capi"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/up"
)

func newUpCommand() *cobra.Command {
	var (
		opts    up.Options
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run Strata on this machine: a local management plane, its controllers and local clusters",
		Long: `Starts a local management plane (etcd and kube-apiserver from the binaries
cache, built on first use), installs Strata's CRDs, and runs the controllers
in this process, with the local cluster provider: Clusters with
provider: local get a real control plane on this machine with simulated nodes.
The management kubeconfig is written to DIR/kubeconfig. State lives in DIR;
running strata up again resumes it with every cluster. Ctrl-C or
strata down stops everything and keeps the state; strata down --purge
removes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			if err := ensureBinaries(ctx, out, cmd.ErrOrStderr()); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			if opts.CAPI {
				if err := ensureCAPI(ctx, out, cmd.ErrOrStderr()); err != nil {
					return &exitError{code: ExitFail, err: err}
				}
			}
			opts.Out = out
			if verbose {
				log.SetLogger(zap.New(zap.WriteTo(cmd.ErrOrStderr())))
				opts.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			} else {
				log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
			}
			if err := up.Run(ctx, opts); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", up.DefaultDir(), "state folder")
	cmd.Flags().StringArrayVar(&opts.Packs, "packs", nil, "folder of packs the profiles use; repeatable")
	cmd.Flags().StringVar(&opts.MetricsAddr, "metrics-addr", "", "address of the metrics endpoint (default: a free loopback port)")
	cmd.Flags().StringVar(&opts.HealthAddr, "health-addr", "", "address of /healthz and /readyz (default: a free loopback port)")
	cmd.Flags().StringVar(&opts.DashboardAddr, "dashboard-addr", "", "address of the dashboard, which acts as this machine's user: keep it on loopback (default: a free loopback port)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log the controllers' work to stderr")
	cmd.Flags().BoolVar(&opts.CAPI, "capi", false, "also run Cluster API and Strata's local providers, for clusters of provider capi (ClusterClass strata-system/local)")
	return cmd
}

// ensureCAPI builds Cluster API's manager on first use when this is a
// Strata source tree, and otherwise says how to get it.
func ensureCAPI(ctx context.Context, out, errOut io.Writer) error {
	b := capi.FindBuild()
	if b.Check() == nil {
		return nil
	}
	script := filepath.Join(filepath.Dir(filepath.Dir(b.Dir)), "..", "hack", "capi", "build.sh")
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("%w (or point %s at a build)", b.Check(), capi.DirEnv)
	}
	fmt.Fprintf(out, "Building Cluster API %s into %s (first use only; about 4 minutes on 2 cores)...\n", b.Version, b.Dir)
	build := exec.CommandContext(ctx, "bash", script, filepath.Dir(b.Dir))
	build.Stdout, build.Stderr = out, errOut
	if err := build.Run(); err != nil {
		return fmt.Errorf("building Cluster API: %w", err)
	}
	return nil
}

// ensureBinaries builds the Kubernetes binaries on first use when this is
// a Strata source tree, and otherwise says how to get them.
func ensureBinaries(ctx context.Context, out, errOut io.Writer) error {
	bins := controlplane.FindBinaries("")
	if bins.Check(controlplane.EtcdBinary, controlplane.APIServerBinary) == nil {
		return nil
	}
	script := filepath.Join(filepath.Dir(filepath.Dir(bins.Dir)), "..", "hack", "kube", "build.sh")
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("the Kubernetes %s binaries are not in %s: build them with `make kube` in the Strata source tree, or point %s at them", bins.Version, bins.Dir, controlplane.BinDirEnv)
	}
	fmt.Fprintf(out, "Building the Kubernetes %s binaries into %s (first use only; about 10 minutes on 2 cores)...\n", bins.Version, bins.Dir)
	build := exec.CommandContext(ctx, "bash", script, filepath.Dir(bins.Dir))
	build.Stdout, build.Stderr = out, errOut
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the Kubernetes binaries: %w", err)
	}
	return nil
}

func newDownCommand() *cobra.Command {
	var (
		dir   string
		purge bool
	)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the strata up running on this machine, keeping its state (or --purge it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := up.Down(cmd.Context(), dir, purge, cmd.OutOrStdout()); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", up.DefaultDir(), "state folder")
	cmd.Flags().BoolVar(&purge, "purge", false, "remove the state folder: management plane, clusters and their data")
	return cmd
}

// defaultKubeconfig falls back to the kubeconfig of `strata up` when
// neither --kubeconfig nor $KUBECONFIG nor ~/.kube/config says otherwise.
func defaultKubeconfig() string {
	if os.Getenv("KUBECONFIG") != "" {
		return ""
	}
	if home, err := os.UserHomeDir(); err == nil {
		if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err == nil {
			return ""
		}
	}
	path := filepath.Join(up.DefaultDir(), "kubeconfig")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return ""
}
