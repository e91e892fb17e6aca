package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/rollout"
)

func newRolloutCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Follow and steer the roll-out of a profile version through the fleet"}
	cmd.AddCommand(newRolloutStatusCommand())
	for _, a := range []struct{ action, short string }{
		{"pause", "Stop new clusters from starting; those updating go on"},
		{"resume", "Go on after a pause, and let the wave that waits for approval start"},
		{"abort", "Stop the roll-out and return every cluster that moved to the version it last ran healthy"},
		{"retry", "Start the failed and rolled-back clusters again, with the failure count cleared"},
	} {
		cmd.AddCommand(newRolloutSteerCommand(a.action, a.short))
	}
	return cmd
}

func getProfileVersion(f *mgmtFlags, name, version string) (client.Client, *v1.ClusterProfile, error) {
	c, ns, err := f.client()
	if err != nil {
		return nil, nil, err
	}
	p := &v1.ClusterProfile{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-" + version}, p); err != nil {
		return nil, nil, &exitError{code: ExitFail, err: fmt.Errorf("profile %s %s in %s: %w", name, version, ns, err)}
	}
	return c, p, nil
}

func newRolloutStatusCommand() *cobra.Command {
	var f mgmtFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status PROFILE VERSION",
		Short: "Show a roll-out: its phase, each wave's clusters and their states",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, p, err := getProfileVersion(&f, args[0], args[1])
			if err != nil {
				return err
			}
			r, err := rollout.ReportOf(p)
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return json.NewEncoder(out).Encode(r)
			}
			fmt.Fprintf(out, "%s %s: %s", r.Profile, r.Version, r.Phase)
			if r.Reason != "" {
				fmt.Fprintf(out, " (%s)", r.Reason)
			}
			fmt.Fprintln(out)
			for _, w := range r.Waves {
				fmt.Fprintf(out, "  wave %s\n", w.Name)
				for _, state := range slices.Sorted(maps.Keys(w.Counts)) {
					fmt.Fprintf(out, "    %d %s (an old roll-out: its clusters are not kept)\n", w.Counts[state], state)
				}
				for _, c := range w.Clusters {
					fmt.Fprintf(out, "    %s/%s: %s", c.Namespace, c.Name, c.State)
					if c.Message != "" {
						fmt.Fprintf(out, " (%s)", c.Message)
					}
					fmt.Fprintln(out)
				}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newRolloutSteerCommand(action, short string) *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   action + " PROFILE VERSION",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := getProfileVersion(&f, args[0], args[1])
			if err != nil {
				return err
			}
			ann, err := rollout.Steer(p, action, time.Now())
			if err != nil {
				return &exitError{code: ExitFail, err: err}
			}
			patch := client.MergeFrom(p.DeepCopy())
			p.Annotations = ann
			if err := c.Patch(context.Background(), p, patch); err != nil {
				return &exitError{code: ExitFail, err: fmt.Errorf("profile %s %s: %w", p.Spec.Name, p.Spec.Version, err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "roll-out of %s %s: %s requested\n", p.Spec.Name, p.Spec.Version, action)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
