package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/pack"
)

func newPackCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pack",
		Short: "Work with packs: the smallest unit of a cluster profile",
	}
	cmd.AddCommand(newPackLintCommand())
	return cmd
}

// lintEntry is one pack in `strata pack lint -o json`; the field names are
// part of the CLI contract.
type lintEntry struct {
	Path     string   `json:"path"`
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Layer    string   `json:"layer"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

func newPackLintCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "lint PATH...",
		Short: "Check packs: a pack folder, a Helm chart, or a folder of packs",
		Long: `Reads each pack the way Strata deploys it and reports every problem with the
file, the field and what was expected. Exit code 0 when no pack has errors,
1 when some do, 2 on usage errors.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError("--output: want table or json, got %q", output)
			}
			entries := lintPaths(args)
			var err error
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(entries)
			} else {
				err = printLintTable(cmd.OutOrStdout(), entries)
			}
			if err != nil {
				return err
			}
			failed := 0
			for _, e := range entries {
				if len(e.Errors) > 0 {
					failed++
				}
			}
			if failed > 0 {
				return &exitError{code: ExitFail, err: fmt.Errorf("%d of %d packs have errors", failed, len(entries))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func lintPaths(args []string) []lintEntry {
	entries := []lintEntry{}
	for _, arg := range args {
		paths, err := pack.Discover(arg)
		if err != nil {
			entries = append(entries, lintEntry{Path: arg, Errors: []string{err.Error()}, Warnings: []string{}})
			continue
		}
		for _, path := range paths {
			entries = append(entries, lintOne(path))
		}
	}
	return entries
}

func lintOne(path string) lintEntry {
	e := lintEntry{Path: path, Errors: []string{}, Warnings: []string{}}
	p, problems := pack.Load(path)
	if p != nil {
		e.Name, e.Version, e.Layer = p.Name, p.Version, string(p.Layer)
	}
	for _, pr := range problems {
		if pr.Severity == pack.Error {
			e.Errors = append(e.Errors, pr.String())
		} else {
			e.Warnings = append(e.Warnings, pr.String())
		}
	}
	return e
}

func printLintTable(out io.Writer, entries []lintEntry) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PACK\tVERSION\tLAYER\tERRORS\tWARNINGS\tPATH")
	for _, e := range entries {
		name := e.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", name, e.Version, e.Layer, len(e.Errors), len(e.Warnings), e.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range entries {
		for _, msg := range e.Errors {
			fmt.Fprintf(out, "error: %s\n", msg)
		}
		for _, msg := range e.Warnings {
			fmt.Fprintf(out, "warning: %s\n", msg)
		}
	}
	return nil
}
