package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"strata.dev/strata/internal/provider/capilocal"
	"strata.dev/strata/internal/provider/local"
)

// newCAPIProvidersCommand runs Strata's local Cluster API providers: the
// process `strata up --capi` starts beside Cluster API's own manager.
func newCAPIProvidersCommand() *cobra.Command {
	var kubeconfig, dir, healthAddr string
	cmd := &cobra.Command{
		Use:   "capi-providers --kubeconfig FILE --dir DIR",
		Short: "Run Strata's local Cluster API providers (LocalCluster, LocalMachine, LocalControlPlane, LocalConfig)",
		Long: `Reconciles the objects of the ClusterClass "local": each LocalControlPlane
runs a real control plane on this machine (its data in DIR), each
LocalMachine is a kwok node in it. Cluster API's core manager must run on
the same management plane; strata up --capi starts both.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.WriteTo(cmd.ErrOrStderr())))
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return usageError("--kubeconfig: %v", err)
			}
			if dir == "" {
				return usageError("--dir: the folder of the control planes' data is required")
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			provider := &local.Provider{Root: dir, Log: logger}
			defer provider.StopAll()
			mgr, err := capilocal.NewManager(cfg, capilocal.Options{Local: provider, Log: logger, HealthAddr: healthAddr})
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := mgr.Start(ctx); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "the management plane's kubeconfig")
	cmd.Flags().StringVar(&dir, "dir", "", "folder holding the local control planes' data")
	cmd.Flags().StringVar(&healthAddr, "health-addr", "0", "address of /healthz and /readyz; 0 for none")
	return cmd
}
