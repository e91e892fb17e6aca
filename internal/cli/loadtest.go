package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"strata.dev/strata/internal/loadtest"
	"strata.dev/strata/internal/pack"
)

func newLoadtestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Measure how much the management plane holds",
	}
	cmd.AddCommand(newLoadtestAgentsCommand())
	return cmd
}

func newLoadtestAgentsCommand() *cobra.Command {
	var (
		f        mgmtFlags
		opts     loadtest.Options
		profile  string
		packs    []string
		remove   bool
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agents --clusters N -n NS --profile NAME:RANGE",
		Short: "Join N hollow agents to the management plane and measure joins, Ready clusters and the agents' requests",
		Long: `Creates N agent-mode Clusters in the namespace (labelled strata.dev/loadtest=agents)
and joins a hollow agent to each, all in this process: the real agent code,
which resolves, plans and reports as an agent does, and applies to no
cluster. It prints, every --every and when stopped (Ctrl-C, or after
--duration): joins per second, clusters registered and Ready, the requests
the agents made of the management plane and the 429s they got.

The clusters stay when it stops, for a look at the fleet; remove them with
"strata loadtest agents --delete -n NS". A manager must be running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ns, err := f.config()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if remove {
				return loadtest.Delete(ctx, cfg, ns, cmd.OutOrStdout())
			}
			name, rng, ok := strings.Cut(profile, ":")
			if !ok || name == "" || rng == "" {
				return usageError("--profile %q: want NAME:RANGE, e.g. hello:1.x", profile)
			}
			if opts.Clusters < 1 {
				return usageError("--clusters %d: want at least 1", opts.Clusters)
			}
			catalog, err := pack.LoadCatalog(packs...)
			if err != nil {
				return usageError("%v", err)
			}
			// controller-runtime would print a stack trace saying it has no
			// logger; the agents' own logs are not this command's output.
			ctrllog.SetLogger(logr.Discard())
			opts.Management, opts.Namespace, opts.Profile, opts.Range, opts.Packs, opts.Out = cfg, ns, name, rng, catalog, cmd.OutOrStdout()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "joining %d hollow agents to clusters in %s following %s %s (stop with Ctrl-C)\n", opts.Clusters, ns, name, rng)
			_, err = loadtest.Agents(ctx, opts)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return nil
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&opts.Clusters, "clusters", 0, "how many agent-mode clusters to make and join")
	fl.StringVar(&profile, "profile", "", "the profile each cluster follows, NAME:RANGE")
	fl.StringArrayVar(&packs, "packs", nil, "folder of packs the profiles use; repeatable")
	fl.StringVar(&opts.PackCacheDir, "pack-cache", "", "folder where the agents keep packs pulled from PackRegistry objects (none: pack folders only)")
	fl.DurationVar(&opts.Heartbeat, "heartbeat", 30*time.Second, "how often each agent renews its Lease")
	fl.DurationVar(&opts.Every, "every", 10*time.Second, "how often figures are printed")
	fl.DurationVar(&duration, "duration", 0, "stop after this long (0: at Ctrl-C)")
	fl.BoolVar(&remove, "delete", false, "remove the clusters an earlier load test made in the namespace")
	return cmd
}
