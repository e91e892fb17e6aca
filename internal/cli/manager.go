package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/dashboard"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
)

func newManagerCommand() *cobra.Command {
	var (
		kubeconfig     string
		packs          []string
		opts           controller.ManagerOptions
		dashboardAddr  string
		dashboardHosts []string
		layerTimout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "manager [--kubeconfig FILE] [--packs DIR]... [--pack-cache DIR]",
		Short: "Run the management plane's controllers: clusters follow their profiles",
		Long: `Watches Cluster and ClusterProfile objects and converges each cluster's
workload cluster to the stack of its profiles, writing per-layer status and
conditions. Packs come from the PackRegistry objects (with --pack-cache) and
from --packs folders. Uses --kubeconfig, or the in-cluster configuration when
empty.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.WriteTo(cmd.ErrOrStderr())))
			catalog, err := pack.LoadCatalog(packs...)
			if err != nil {
				return usageError("%v", err)
			}
			cfg, err := ctrl.GetConfig()
			if kubeconfig != "" {
				cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			}
			if err != nil {
				return usageError("management plane: %v", err)
			}
			opts.Packs, opts.LayerTimeout = catalog, layerTimout
			mgr, err := controller.NewManager(cfg, opts)
			if err != nil {
				return err
			}
			if dashboardAddr != "0" {
				board, err := dashboard.New(dashboard.Options{Config: cfg, Listen: dashboardAddr, Hosts: dashboardHosts,
					PackFiles: registry.PackFiles{CacheDir: opts.PackCacheDir, Folders: catalog}})
				if err != nil {
					return err
				}
				if err := mgr.Add(board.Runnable(dashboardAddr)); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "strata manager: %d packs, management plane %s\n", catalog.Len(), cfg.Host)
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the management plane (in-cluster configuration when empty)")
	cmd.Flags().StringArrayVar(&packs, "packs", nil, "folder of packs the profiles use; repeatable")
	cmd.Flags().StringVar(&opts.MetricsAddr, "metrics-addr", "127.0.0.1:8080", "address of the Prometheus metrics endpoint; 0 turns it off")
	cmd.Flags().StringVar(&opts.HealthAddr, "health-addr", "127.0.0.1:8081", "address of /healthz and /readyz; 0 turns them off")
	cmd.Flags().StringVar(&dashboardAddr, "dashboard-addr", "0", "address of the dashboard, where each user signs in with a token and acts as themselves; 0 turns it off")
	cmd.Flags().StringArrayVar(&dashboardHosts, "dashboard-host", nil, "a name (host or host:port) the dashboard is served under, e.g. strata.example.com; repeatable. Requests naming another Host are refused (DNS rebinding); none: any name")
	cmd.Flags().BoolVar(&opts.LeaderElection, "leader-elect", true, "elect a leader, so several replicas can run")
	cmd.Flags().StringVar(&opts.LeaderElectionNamespace, "leader-elect-namespace", "", "namespace of the leader election Lease (the manager's own when in a cluster)")
	cmd.Flags().StringVar(&opts.Shard, "shard", "", "reconcile only the Clusters labelled strata.dev/shard=SHARD (one leader per shard); empty: the unlabelled ones, and profiles, roll-outs and registries")
	cmd.Flags().DurationVar(&opts.Resync, "resync", 5*time.Minute, "how often a Ready cluster is checked for drift")
	cmd.Flags().IntVar(&opts.Workers, "workers", 4, "how many clusters are worked on at once (clusters waiting to become ready do not count)")
	cmd.Flags().StringVar(&opts.PackCacheDir, "pack-cache", "", "folder where packs pulled from PackRegistry objects are kept (turns PackRegistry on); e.g. a volume")
	cmd.Flags().Int64Var(&opts.PackCacheSize, "pack-cache-size", 2<<30, "bound of the pack cache in bytes; least recently used packs go first")
	cmd.Flags().Float32Var(&opts.QPS, "kube-api-qps", 300, "requests per second the manager may make to the management plane (its API Priority and Fairness level protects the API server)")
	cmd.Flags().IntVar(&opts.Burst, "kube-api-burst", 600, "burst of requests above --kube-api-qps")
	cmd.Flags().DurationVar(&layerTimout, "layer-timeout", 5*time.Minute, "how long each layer may take to become Ready")
	return cmd
}
