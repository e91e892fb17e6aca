package cli

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/agent"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/version"
)

func newAgentCommand() *cobra.Command {
	var (
		opts                agent.Options
		cluster, kubeconfig string
		caFile, caData      string
		tokenFile           string
		packs               []string
	)
	cmd := &cobra.Command{
		Use:   "agent --server URL --cluster NAMESPACE/NAME [--token TOKEN] [--kubeconfig FILE]",
		Short: "Run a cluster's agent: pull its desired state from the management plane, apply it, report back",
		Long: `Serves one agent-mode Cluster from inside (or beside) the cluster it manages,
for clusters the management plane cannot reach: only outbound HTTPS to the
management plane's API is needed. The first start registers with the
one-time token that "strata cluster join-command" prints; the agent then
keeps its own credentials in the cluster (Secret strata-agent of
--credentials-namespace)
and renews them. It reaches the cluster it manages with --kubeconfig, or the
in-cluster configuration when empty.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, name, ok := strings.Cut(cluster, "/")
			if !ok || ns == "" || name == "" {
				return usageError("--cluster %q: want NAMESPACE/NAME", cluster)
			}
			opts.Cluster = types.NamespacedName{Namespace: ns, Name: name}
			if tokenFile != "" {
				data, err := os.ReadFile(tokenFile)
				if err != nil {
					return usageError("--token-file: %v", err)
				}
				opts.Join.Token = strings.TrimSpace(string(data))
			}
			if opts.Join.Token != "" && opts.Join.Server == "" {
				return usageError("--token needs --server: the management plane's API URL")
			}
			switch {
			case caFile != "":
				data, err := os.ReadFile(caFile)
				if err != nil {
					return usageError("--certificate-authority: %v", err)
				}
				opts.Join.CAData = data
			case caData != "":
				data, err := base64.StdEncoding.DecodeString(caData)
				if err != nil {
					return usageError("--certificate-authority-data: want base64 of a PEM file: %v", err)
				}
				opts.Join.CAData = data
			}
			catalog, err := pack.LoadCatalog(packs...)
			if err != nil {
				return usageError("%v", err)
			}
			opts.Packs = catalog
			var workload *rest.Config
			if kubeconfig != "" {
				workload, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			} else {
				workload, err = rest.InClusterConfig()
			}
			if err != nil {
				return usageError("the cluster to manage: %v", err)
			}
			opts.Workload, opts.Version = workload, version.Version
			opts.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			// controller-runtime logs through the same handler: without
			// one it prints a stack trace saying it has none.
			ctrllog.SetLogger(logr.FromSlogHandler(opts.Log.Handler()))
			if opts.PackCacheDir == "" {
				// The project's PackRegistries serve the agent as they
				// serve the manager: packs need a folder to be kept in.
				opts.PackCacheDir = defaultAgentPackCache()
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "strata agent: cluster %s, %d packs\n", opts.Cluster, catalog.Len())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return agent.Run(ctx, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Join.Server, "server", "", "the management plane's API URL (needed with --token)")
	f.StringVar(&cluster, "cluster", "", "the agent-mode Cluster this agent serves, NAMESPACE/NAME")
	f.StringVar(&opts.Join.Token, "token", "", "one-time join token from `strata cluster join-command` (first start only)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the join token, instead of --token")
	f.StringVar(&caFile, "certificate-authority", "", "PEM file of the management plane's serving CA")
	f.StringVar(&caData, "certificate-authority-data", "", "the management plane's serving CA, base64 PEM")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to manage (in-cluster configuration when empty)")
	f.StringVar(&opts.CredentialsNamespace, "credentials-namespace", agent.DefaultCredentialsNamespace, "namespace of the managed cluster where the agent keeps its credentials (Secret strata-agent)")
	f.StringArrayVar(&packs, "packs", nil, "folder of packs the profiles use; repeatable")
	f.StringVar(&opts.PackCacheDir, "pack-cache", "", "folder where packs pulled from the project's PackRegistry objects are kept (default: strata/agent-packs in the user cache folder)")
	f.DurationVar(&opts.Heartbeat, "heartbeat", 30*time.Second, "how often the agent reports that it is alive")
	f.DurationVar(&opts.Resync, "resync", 5*time.Minute, "how often the stack is checked for drift")
	f.DurationVar(&opts.LayerTimeout, "layer-timeout", 5*time.Minute, "how long each layer may take to become Ready")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

// defaultAgentPackCache is the user's cache folder, or the temporary
// folder where there is none (a container without a home).
func defaultAgentPackCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "strata", "agent-packs")
}

func newClusterJoinCommand() *cobra.Command {
	var (
		f      mgmtFlags
		server string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "join-command NAME",
		Short: "Print the command that starts an agent-mode cluster's agent, with a fresh one-time token",
		Long: `Mints a join token for the agent of an agent-mode Cluster and prints the
"strata agent" command line to run where the agent reaches the cluster (add
--kubeconfig FILE outside the cluster). The token serves one registration,
within --ttl; running join-command again ends the earlier token.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, ns, err := f.config()
			if err != nil {
				return err
			}
			_, cl, err := getCluster(&f, args[0])
			if err != nil {
				return err
			}
			if cl.Spec.Mode != v1.ModeAgent {
				return &exitError{code: ExitFail, err: fmt.Errorf("cluster %s/%s is in mode %s: set spec.mode: agent first", ns, cl.Name, cl.Spec.Mode)}
			}
			join, err := agent.NewJoin(cmd.Context(), cfg, types.NamespacedName{Namespace: ns, Name: cl.Name}, server, ttl)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), join.Command())
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&server, "server", "", "the management plane's API URL as the agent reaches it (default: the kubeconfig's)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token may wait to be used (at least 10m)")
	return cmd
}
