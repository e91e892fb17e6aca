package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/version"
)

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Strata's version and the Kubernetes version of its control-plane binaries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			bins := controlplane.FindBinaries(info.Kubernetes)
			built := bins.Check(controlplane.APIServerBinary, controlplane.EtcdBinary) == nil
			switch output {
			case "json":
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					version.Info
					BinariesDir   string `json:"binariesDir"`
					BinariesBuilt bool   `json:"binariesBuilt"`
				}{info, bins.Dir, built})
			case "", "text":
				state := "built"
				if !built {
					state = "not built yet: run `make kube`"
				}
				fmt.Fprintln(cmd.OutOrStdout(), info.String())
				fmt.Fprintf(cmd.OutOrStdout(), "kubernetes %s (binaries in %s, %s)\n", info.Kubernetes, bins.Dir, state)
				return nil
			default:
				return usageError("--output: want text or json, got %q", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
