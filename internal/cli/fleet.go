package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/provider/clusterapi"
	"strata.dev/strata/internal/registry"
)

// mgmtFlags reach the management plane.
type mgmtFlags struct {
	kubeconfig string
	namespace  string
}

func (f *mgmtFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the management plane (default: $KUBECONFIG, ~/.kube/config, or that of strata up)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "project namespace (default: the kubeconfig's)")
}

func (f *mgmtFlags) client() (client.Client, string, error) {
	cfg, ns, err := f.config()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		return nil, "", &exitError{code: ExitFail, err: err}
	}
	return c, ns, nil
}

// config is the management plane's client configuration and the project.
func (f *mgmtFlags) config() (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	} else if path := defaultKubeconfig(); path != "" {
		rules.ExplicitPath = path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", usageError("management plane: %v", err)
	}
	ns := f.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	return cfg, ns, nil
}

// clusterJSON is the `strata get clusters -o json` contract.
type clusterJSON struct {
	Name             string                  `json:"name"`
	Namespace        string                  `json:"namespace"`
	Phase            string                  `json:"phase"`
	Profiles         []controller.ProfileRef `json:"profiles"`
	UpdatesAvailable bool                    `json:"updatesAvailable"`
	Drifted          bool                    `json:"drifted"`
	Layers           []layerJSON             `json:"layers"`
	// Agent is how an agent-mode cluster's agent stands: connected,
	// disconnected or not registered; absent in push mode.
	Agent string `json:"agent,omitempty"`
}

type layerJSON struct {
	Name    string `json:"name"`
	Profile string `json:"profile"`
	Source  string `json:"source"`
	Version string `json:"version"`
	// Digest of the pack's content, for packs from registries.
	Digest  string `json:"digest,omitempty"`
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
}

func toClusterJSON(c v1.Cluster) clusterJSON {
	out := clusterJSON{
		Name: c.Name, Namespace: c.Namespace, Phase: string(c.Status.Phase), Profiles: controller.AttachedProfiles(&c),
		UpdatesAvailable: apimeta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionUpdatesAvailable),
		Agent:            controller.AgentState(&c),
		Layers:           []layerJSON{},
	}
	for _, l := range c.Status.Layers {
		out.Drifted = out.Drifted || l.Phase == "Drifted"
		out.Layers = append(out.Layers, layerJSON{Name: l.Name, Profile: l.Profile, Source: l.Source, Version: l.Version, Digest: l.Digest, Phase: l.Phase, Message: l.Message})
	}
	return out
}

func newGetCommand() *cobra.Command {
	var (
		f      mgmtFlags
		output string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "get clusters|profiles|packs",
		Short: "List clusters, profiles or the packs of the registries of the management plane",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError("--output: want table or json, got %q", output)
			}
			c, ns, err := f.client()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			if !all {
				opts = append(opts, client.InNamespace(ns))
			}
			out := cmd.OutOrStdout()
			switch args[0] {
			case "clusters", "cluster":
				var list v1.ClusterList
				if err := c.List(context.Background(), &list, opts...); err != nil {
					return &exitError{code: ExitFail, err: err}
				}
				return printClusters(out, list.Items, output)
			case "profiles", "profile", "clusterprofiles":
				var list v1.ClusterProfileList
				if err := c.List(context.Background(), &list, opts...); err != nil {
					return &exitError{code: ExitFail, err: err}
				}
				return printProfiles(out, list.Items, output)
			case "packs", "pack":
				uses, err := packUses(c, ns, all)
				if err != nil {
					return &exitError{code: ExitFail, err: err}
				}
				return printPacks(out, uses, output)
			default:
				return usageError("get %q: want clusters, profiles or packs", args[0])
			}
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list every project")
	return cmd
}

// packUses lists the packs of the registries a project sees (its own and
// the shared ones; every registry with --all-namespaces) with their users.
func packUses(c client.Client, ns string, all bool) ([]registry.PackUse, error) {
	ctx := context.Background()
	var regs v1.PackRegistryList
	var profiles v1.ClusterProfileList
	var clusters v1.ClusterList
	for _, list := range []client.ObjectList{&regs, &profiles, &clusters} {
		if err := c.List(ctx, list); err != nil {
			return nil, err
		}
	}
	visible := func(o client.Object) bool {
		return all || o.GetNamespace() == ns || o.GetNamespace() == controller.SharedNamespace
	}
	own := func(o client.Object) bool { return all || o.GetNamespace() == ns }
	return registry.Usage(keep(regs.Items, visible), keep(profiles.Items, visible), keep(clusters.Items, own)), nil
}

// keep returns the items ok accepts.
func keep[T any, PT interface {
	*T
	client.Object
}](items []T, ok func(client.Object) bool) []T {
	var out []T
	for i := range items {
		if ok(PT(&items[i])) {
			out = append(out, items[i])
		}
	}
	return out
}

func printPacks(out io.Writer, uses []registry.PackUse, output string) error {
	if output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(uses)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PACK\tVERSION\tLAYER\tREGISTRIES\tPROFILES\tCLUSTERS\tNEWER")
	for _, u := range uses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", u.Name, u.Version, u.Layer, strings.Join(u.Registries, ","), len(u.Profiles), len(u.Clusters), u.Newest)
	}
	return tw.Flush()
}

func printClusters(out io.Writer, items []v1.Cluster, output string) error {
	if output == "json" {
		list := make([]clusterJSON, 0, len(items))
		for _, c := range items {
			list = append(list, toClusterJSON(c))
		}
		return json.NewEncoder(out).Encode(list)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPHASE\tPROFILES\tLAYERS\tUPDATES")
	for _, c := range items {
		var profiles []string
		for _, p := range controller.AttachedProfiles(&c) {
			profiles = append(profiles, p.String())
		}
		ready := 0
		for _, l := range c.Status.Layers {
			if l.Phase == "Ready" {
				ready++
			}
		}
		updates := "-"
		if c.Status.PendingPlan != nil {
			updates = c.Status.PendingPlan.Summary
		}
		phase := string(c.Status.Phase)
		if state := controller.AgentState(&c); state != "" && state != "connected" {
			phase += " (agent " + state + ")"
		}
		if c.Spec.Provider == v1.ProviderCAPI {
			phase += " (capi " + clusterapi.Summary(c.Status.CAPI) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d Ready\t%s\n", c.Namespace, c.Name, phase, strings.Join(profiles, ","), ready, len(c.Status.Layers), updates)
	}
	return tw.Flush()
}

func printProfiles(out io.Writer, items []v1.ClusterProfile, output string) error {
	if output == "json" {
		return json.NewEncoder(out).Encode(items)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPROFILE\tVERSION\tTYPE\tVALID\tLAYERS")
	for _, p := range items {
		var layers []string
		for _, l := range p.Spec.Layers {
			layers = append(layers, l.Name)
		}
		valid := "-"
		if cond := apimeta.FindStatusCondition(p.Status.Conditions, "Valid"); cond != nil {
			valid = string(cond.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Spec.Name, p.Spec.Version, p.Spec.Type, valid, strings.Join(layers, ","))
	}
	return tw.Flush()
}

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Work with one cluster of the management plane"}
	cmd.AddCommand(newClusterPlanCommand(), newClusterApproveCommand(), newClusterKubeconfigCommand(), newClusterJoinCommand())
	return cmd
}

func getCluster(f *mgmtFlags, name string) (client.Client, *v1.Cluster, error) {
	c, ns, err := f.client()
	if err != nil {
		return nil, nil, err
	}
	cl := &v1.Cluster{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cl); err != nil {
		return nil, nil, &exitError{code: ExitFail, err: fmt.Errorf("cluster %s/%s: %w", ns, name, err)}
	}
	return c, cl, nil
}

func newClusterPlanCommand() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "plan NAME",
		Short: "Show the plan waiting for approval: exactly what approving applies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cl, err := getCluster(&f, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			p := cl.Status.PendingPlan
			if p == nil {
				fmt.Fprintf(out, "cluster %s/%s: no pending plan (update policy %s)\n", cl.Namespace, cl.Name, updatePolicy(cl))
				return nil
			}
			fmt.Fprintf(out, "cluster %s/%s: %s (plan %s)\n", cl.Namespace, cl.Name, p.Summary, p.Digest)
			for _, l := range p.Layers {
				fmt.Fprintf(out, "  %s: %s %s\n", l.Name, l.Action, l.Reason)
				if l.ValuesDiff != "" {
					fmt.Fprint(out, indent(l.ValuesDiff, "      "))
				}
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newClusterApproveCommand() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve the pending plan of a Manual cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cl, err := getCluster(&f, args[0])
			if err != nil {
				return err
			}
			if cl.Status.PendingPlan == nil {
				return &exitError{code: ExitFail, err: fmt.Errorf("cluster %s/%s has no pending plan to approve", cl.Namespace, cl.Name)}
			}
			patch := client.MergeFrom(cl.DeepCopy())
			cl.Spec.ApprovedPlan = cl.Status.PendingPlan.Digest
			if err := c.Patch(context.Background(), cl, patch); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved plan %s of cluster %s/%s: %s\n", cl.Spec.ApprovedPlan, cl.Namespace, cl.Name, cl.Status.PendingPlan.Summary)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newDescribeCommand() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "describe cluster NAME",
		Short: "Show one cluster: profiles, conditions, layers, pending plan, recent events",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "cluster" {
				return usageError("describe %q: want cluster", args[0])
			}
			c, cl, err := getCluster(&f, args[1])
			if err != nil {
				return err
			}
			var events eventsv1.EventList
			if err := c.List(context.Background(), &events, client.InNamespace(cl.Namespace)); err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			return describeCluster(cmd.OutOrStdout(), cl, events.Items)
		},
	}
	f.register(cmd)
	return cmd
}

func describeCluster(out io.Writer, cl *v1.Cluster, events []eventsv1.Event) error {
	fmt.Fprintf(out, "Cluster:     %s/%s\nPhase:       %s\nKubernetes:  %s\nPolicies:    updates %s, drift %s\nProfiles:\n",
		cl.Namespace, cl.Name, cl.Status.Phase, cl.Status.KubernetesVersion, updatePolicy(cl), cl.Spec.DriftPolicy)
	for _, p := range controller.AttachedProfiles(cl) {
		fmt.Fprintf(out, "  %s\n", p)
	}
	if cl.Spec.Provider == v1.ProviderCAPI && cl.Spec.CAPI != nil {
		fmt.Fprintf(out, "Cluster API: %s (ClusterClass %s/%s)\n", clusterapi.Summary(cl.Status.CAPI), clusterapi.ClassNamespace(cl), cl.Spec.CAPI.ClassRef.Name)
	}
	fmt.Fprintln(out, "Conditions:")
	for _, c := range cl.Status.Conditions {
		fmt.Fprintf(out, "  %-17s %-6s %-17s %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	fmt.Fprintln(out, "Layers:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tPROFILE\tSOURCE\tVERSION\tPHASE\tLAST APPLIED\tMESSAGE")
	for _, l := range cl.Status.Layers {
		when := "-"
		if l.LastAppliedTime != nil {
			when = l.LastAppliedTime.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s %s\t%s\t%s\t%s\t%s\n", l.Name, l.Profile, l.ProfileVersion, l.Source, l.Package, l.Version, l.Phase, when, l.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p := cl.Status.PendingPlan; p != nil {
		fmt.Fprintf(out, "Pending plan: %s (%s): strata cluster plan %s -n %s\n", p.Summary, p.Digest, cl.Name, cl.Namespace)
	}
	fmt.Fprintln(out, "Events:")
	for _, e := range events {
		if e.Regarding.Kind == "Cluster" && e.Regarding.Name == cl.Name {
			fmt.Fprintf(out, "  %s  %-8s %-20s %s\n", e.CreationTimestamp.UTC().Format("15:04:05"), e.Type, e.Reason, e.Note)
		}
	}
	return nil
}

// updatePolicy is the policy in effect, as the manager last saw it, else
// the cluster's own.
func updatePolicy(cl *v1.Cluster) v1.UpdatePolicy {
	if cl.Status.UpdatePolicy != "" {
		return cl.Status.UpdatePolicy
	}
	return cl.Spec.UpdatePolicy
}
