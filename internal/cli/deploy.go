package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/tools/clientcmd"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/stack"
)

// targetFlags are the flags deploy and diff share.
type targetFlags struct {
	inputFlags
	kubeconfig  string
	clusterFile string
	timeout     time.Duration
}

func (f *targetFlags) register(cmd *cobra.Command) {
	f.inputFlags.register(cmd)
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the target cluster (required)")
	cmd.Flags().StringVar(&f.clusterFile, "cluster", "", "file holding the Cluster to converge (its profiles, variables and overrides)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long each layer may take to become Ready")
}

// target is a resolved stack and an engine connected to its cluster.
type target struct {
	stack  *stack.Stack
	engine *engine.Engine
}

// prepare reads the input, connects to the cluster and resolves the stack.
// Every failure here happens before anything is applied: exit code 2 for
// usage and input errors, 1 when the cluster cannot be reached.
func (f *targetFlags) prepare(errOut io.Writer, events func(engine.Event)) (*target, error) {
	if f.kubeconfig == "" {
		return nil, usageError("--kubeconfig FILE is required: the cluster to converge")
	}
	docs, catalog, err := f.load(errOut)
	if err != nil {
		return nil, asInputError(err)
	}
	raw, err := clientcmd.LoadFromFile(f.kubeconfig)
	if err != nil {
		return nil, usageError("--kubeconfig %s: %v", f.kubeconfig, err)
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, nil).ClientConfig()
	if err != nil {
		return nil, usageError("--kubeconfig %s: %v", f.kubeconfig, err)
	}
	cluster, err := f.cluster(docs, raw.CurrentContext)
	if err != nil {
		return nil, err
	}
	e, err := engine.New(engine.Options{
		RESTConfig: cfg, Timeout: f.timeout, Events: events,
		Charts: chartsource.New(chartsource.Options{PlainHTTP: f.plainHTTP, Access: hostAccess(catalog)}),
	})
	if err != nil {
		return nil, &exitError{code: ExitFail, err: err}
	}
	kv, err := e.KubernetesVersion()
	if err != nil {
		return nil, &exitError{code: ExitFail, err: fmt.Errorf("cluster %s (%s): %w; nothing was applied", raw.CurrentContext, cfg.Host, err)}
	}
	st, err := stack.ResolveStack(docs.Profiles, cluster, catalog, stack.Facts{KubernetesVersion: kv, Existing: true})
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("%w\nnothing was applied", err)}
	}
	if err := f.trustCharts(st); err != nil {
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("%w\nnothing was applied", err)}
	}
	return &target{stack: st, engine: e}, nil
}

// trustCharts gives the chart layers with chart.verify the key of
// --verify-key: offline, the Secrets verify names are not read.
func (f *targetFlags) trustCharts(st *stack.Stack) error {
	for i := range st.Layers {
		l := &st.Layers[i]
		if l.Spec.Chart == nil || l.Spec.Chart.Verify == nil {
			continue
		}
		if l.Spec.Chart.Verify.Provider != v1.SignatureCosign {
			return fmt.Errorf("layer %q: chart.verify.provider %s: offline, strata checks cosign signatures only (--verify-key FILE); let the manager deploy it", l.Name, l.Spec.Chart.Verify.Provider)
		}
		if f.verifyKey == "" {
			return fmt.Errorf("layer %q: chart.verify is set: pass --verify-key FILE, the cosign public key its chart must be signed with (offline, the Secrets it names are not read)", l.Name)
		}
		trust, err := readVerifyKey(f.verifyKey)
		if err != nil {
			return fmt.Errorf("--verify-key: %w", err)
		}
		l.ChartTrust = trust
	}
	return nil
}

// cluster is the Cluster of --cluster, or one that attaches every profile
// given, named after the kubeconfig's current context.
func (f *targetFlags) cluster(docs *profile.Documents, context string) (profile.Cluster, error) {
	if f.clusterFile != "" {
		cdocs, err := profile.ReadFiles(f.clusterFile)
		if err != nil {
			return profile.Cluster{}, &exitError{code: ExitUsage, err: err}
		}
		if len(cdocs.Clusters) != 1 {
			return profile.Cluster{}, usageError("--cluster %s: want exactly one Cluster document, found %d", f.clusterFile, len(cdocs.Clusters))
		}
		docs.Profiles = append(docs.Profiles, cdocs.Profiles...)
		return cdocs.Clusters[0], nil
	}
	if len(docs.Profiles) == 0 {
		return profile.Cluster{}, usageError("no ClusterProfile in the -f files")
	}
	c := &v1.Cluster{}
	c.Name = sanitizeName(context)
	seen := map[string]string{}
	for _, p := range docs.Profiles {
		if v, dup := seen[p.Spec.Name]; dup {
			return profile.Cluster{}, usageError("profile %q is given in versions %s and %s: pass --cluster to say which one the cluster follows", p.Spec.Name, v, p.Spec.Version)
		}
		seen[p.Spec.Name] = p.Spec.Version
		c.Spec.Profiles = append(c.Spec.Profiles, v1.ProfileAttachment{Name: p.Spec.Name, Version: p.Spec.Version})
	}
	return profile.Cluster{Cluster: c, Source: docs.Profiles[0].Source}, nil
}

// sanitizeName turns a kubeconfig context into a usable stack name.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		return "default"
	}
	return name
}

// asInputError turns a read failure into the deploy contract's exit 2.
func asInputError(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{code: ExitUsage, err: ee.err}
	}
	return &exitError{code: ExitUsage, err: err}
}

func newDeployCommand() *cobra.Command {
	var (
		f      targetFlags
		dryRun bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "deploy --kubeconfig FILE -f PROFILE... [--cluster FILE] [--packs DIR]...",
		Short: "Converge a cluster to the stack of its profiles, once",
		Long: `Resolves the profiles (and --cluster's variables and overrides) into a stack,
plans it against what the cluster runs, and applies the plan layer by layer:
install, upgrade, remove, and repair drift. The same engine runs in the
management plane. Exit code 0 when every layer is Ready, 1 when any failed
(or the cluster cannot be reached), 2 on usage or input errors, which apply
nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageError("--output: want text or json, got %q", output)
			}
			progressOut := cmd.OutOrStdout()
			if output == "json" {
				progressOut = cmd.ErrOrStderr()
			}
			progress := newProgress(progressOut)
			t, err := f.prepare(cmd.ErrOrStderr(), progress.event)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			plan, err := t.engine.Plan(ctx, t.stack)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			if dryRun {
				return printPlan(cmd.OutOrStdout(), plan, output)
			}
			progress.start(plan)
			res, err := t.engine.Apply(ctx, plan)
			progress.stop()
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			if err := printResult(cmd.OutOrStdout(), res, output); err != nil {
				return err
			}
			if res.Failed() {
				return &exitError{code: ExitFail, err: fmt.Errorf("%d of %d layers are not Ready", countNotReady(res), len(res.Layers))}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan (install, upgrade, remove, unchanged per layer, values diff) and change nothing")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func countNotReady(res *engine.Result) int {
	n := 0
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady && l.Phase != engine.PhaseRemoved && l.Phase != engine.PhaseDrifted {
			n++
		}
	}
	return n
}

func printPlan(out io.Writer, plan *engine.Plan, output string) error {
	if output == "json" {
		return json.NewEncoder(out).Encode(plan)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tACTION\tVERSION\tOBJECTS\tWHY")
	for _, l := range plan.Layers {
		ver := l.ToVersion
		if l.FromVersion != "" && l.FromVersion != l.ToVersion {
			ver = strings.TrimSuffix(l.FromVersion+" → "+l.ToVersion, " → ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.Name, l.Action, ver, l.Objects, l.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range plan.Layers {
		// New and removed layers' values are all new or all gone: render
		// shows them; the plan shows what changes.
		if l.ValuesDiff != "" && l.Action == engine.ActionUpgrade {
			fmt.Fprintf(out, "\nvalues of layer %s:\n%s", l.Name, indent(l.ValuesDiff, "  "))
		}
	}
	fmt.Fprintf(out, "\n%d of %d layers would change; nothing was applied (--dry-run)\n", plan.Changes(), len(plan.Layers))
	return nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// deployJSON is the -o json contract: {"layers":[{name, action, phase,
// objects, writes, message}]}.
type deployJSON struct {
	Stack  string               `json:"stack"`
	Layers []engine.LayerResult `json:"layers"`
}

func printResult(out io.Writer, res *engine.Result, output string) error {
	if output == "json" {
		return json.NewEncoder(out).Encode(deployJSON{Stack: res.Stack, Layers: res.Layers})
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tACTION\tPHASE\tOBJECTS\tWRITES\tMESSAGE")
	for _, l := range res.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", l.Name, l.Action, l.Phase, l.Objects, l.Writes, l.Message)
	}
	return tw.Flush()
}

// progress shows what the engine does as it does it: a line per event,
// and on a terminal a live line for the layer being worked on.
type progress struct {
	out     io.Writer
	live    bool
	began   time.Time
	mu      sync.Mutex
	current string
	since   time.Time
	done    chan struct{}
}

func newProgress(out io.Writer) *progress {
	f, ok := out.(*os.File)
	return &progress{out: out, live: ok && term.IsTerminal(int(f.Fd())), began: time.Now()}
}

func (p *progress) start(plan *engine.Plan) {
	fmt.Fprintf(p.out, "applying %d layers to %s (%d to change)\n", len(plan.Layers), plan.Stack, plan.Changes())
	if !p.live {
		return
	}
	p.done = make(chan struct{})
	go func() {
		spin := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
		tick := time.NewTicker(120 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.done:
				fmt.Fprint(p.out, "\r\033[K")
				return
			case <-tick.C:
				p.mu.Lock()
				if p.current != "" {
					fmt.Fprintf(p.out, "\r\033[K%s %s (%s)", spin[i%len(spin)], p.current, time.Since(p.since).Round(100*time.Millisecond))
				}
				p.mu.Unlock()
			}
		}
	}()
}

func (p *progress) stop() {
	if p.done != nil {
		close(p.done)
		p.done = nil
	}
}

func (p *progress) event(ev engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.out, "\r\033[K")
	}
	elapsed := ev.Time.Sub(p.began).Round(100 * time.Millisecond)
	switch ev.Phase {
	case engine.PhaseInstalling, engine.PhaseUpgrading, engine.PhaseRemoving:
		p.current, p.since = fmt.Sprintf("%s: %s", ev.Layer, strings.ToLower(string(ev.Phase))), ev.Time
		fmt.Fprintf(p.out, "[%6s] %-20s %-10s %s\n", elapsed, ev.Layer, ev.Phase, ev.Message)
	default:
		p.current = ""
		fmt.Fprintf(p.out, "[%6s] %-20s %-10s %s\n", elapsed, ev.Layer, ev.Phase, ev.Message)
	}
}

func newDiffCommand() *cobra.Command {
	var f targetFlags
	cmd := &cobra.Command{
		Use:   "diff --kubeconfig FILE -f PROFILE... [--cluster FILE] [--packs DIR]...",
		Short: "Show how a cluster differs from its stack: pending changes and drift",
		Long: `Exit code 0 when the cluster matches the stack, 1 when it differs (pending
changes or drift, listed per layer and object), 2 on errors, like kubectl diff.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := f.prepare(cmd.ErrOrStderr(), nil)
			if err != nil {
				if ee := (*exitError)(nil); errors.As(err, &ee) {
					ee.code = ExitUsage
				}
				return err
			}
			plan, drifts, err := t.engine.Diff(cmd.Context(), t.stack)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			out := cmd.OutOrStdout()
			differs := false
			for _, l := range plan.Layers {
				if l.Action != engine.ActionUnchanged {
					differs = true
					fmt.Fprintf(out, "%s: %s", l.Name, l.Action)
					if l.Reason != "" {
						fmt.Fprintf(out, " (%s)", l.Reason)
					}
					fmt.Fprintln(out)
					if l.ValuesDiff != "" {
						fmt.Fprint(out, indent(l.ValuesDiff, "    "))
					}
				}
			}
			names := make([]string, 0, len(drifts))
			for n := range drifts {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				differs = true
				for _, d := range drifts[n] {
					fmt.Fprintf(out, "%s: drift: %s\n", n, d)
				}
			}
			if differs {
				return &exitError{code: ExitFail, err: errors.New("the cluster differs from its stack")}
			}
			fmt.Fprintf(out, "cluster matches its stack (%d layers)\n", len(plan.Layers))
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// hostAccess lets chart and Zarf layers on OCI use the credentials and TLS
// settings given for a pack registry on the same host.
func hostAccess(catalog stack.Packs) func(string) (chartsource.HostAccess, bool) {
	if c, ok := catalog.(*registry.Catalog); ok {
		return registry.HostAccess(c.Registries)
	}
	return nil
}
