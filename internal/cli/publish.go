package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// newProfilePublishCommand publishes a draft profile version: from then on
// it flows to the clusters that follow it, through its roll-out if it has
// one.
func newProfilePublishCommand() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "publish PROFILE VERSION",
		Short: "Publish a draft profile version: clusters following it move to it (through its roll-out, if any)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := getProfileVersion(&f, args[0], args[1])
			if err != nil {
				return err
			}
			if !p.Spec.Draft {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s is published already\n", p.Spec.Name, p.Spec.Version)
				return nil
			}
			patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
			p.Spec.Draft = false
			if err := c.Patch(context.Background(), p, patch); err != nil {
				return &exitError{code: ExitFail, err: fmt.Errorf("publish %s %s: %w", p.Spec.Name, p.Spec.Version, err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s published\n", p.Spec.Name, p.Spec.Version)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
