package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
)

func newPackCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pack",
		Short: "Work with packs: the smallest unit of a cluster profile",
	}
	cmd.AddCommand(newPackLintCommand(), newPackPushCommand(), newPackPullCommand(), newPackListCommand(), newPackMirrorCommand(), newPackVerifyCommand())
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
	var (
		output     string
		registries []string
		rf         registryFlags
	)
	cmd := &cobra.Command{
		Use:   "lint [PATH...] [--registry oci://HOST/BASE]...",
		Short: "Check packs: a pack folder, a Helm chart, a folder of packs, or every pack of a registry",
		Long: `Reads each pack the way Strata deploys it and reports every problem with the
file, the field and what was expected. Exit code 0 when no pack has errors,
1 when some do, 2 on usage errors.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError("--output: want table or json, got %q", output)
			}
			if len(args) == 0 && len(registries) == 0 {
				return usageError("give pack folders, or --registry oci://HOST/BASE")
			}
			entries := lintPaths(args)
			if len(registries) > 0 {
				regs, cache, err := rf.open(registries, cmd.InOrStdin())
				if err != nil {
					return err
				}
				entries = append(entries, lintRegistries(regs, cache)...)
			}
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
	cmd.Flags().StringArrayVar(&registries, "registry", nil, "oci://HOST[:PORT]/BASE whose packs to lint; repeatable")
	rf.register(cmd)
	return cmd
}

// lintRegistries lints every pack version the registries hold; a pack that
// cannot be pulled is an entry with that error.
func lintRegistries(regs []*registry.Registry, cache *registry.Cache) []lintEntry {
	ctx, cancel := registryContext()
	defer cancel()
	var entries []lintEntry
	for _, r := range regs {
		list, err := r.List(ctx, cache)
		if err != nil {
			entries = append(entries, lintEntry{Path: r.Endpoint.String(), Errors: []string{err.Error()}, Warnings: []string{}})
			continue
		}
		for _, e := range list {
			where := "oci://" + r.Endpoint.PackRepository(e.Name) + ":" + e.Version
			pulled, err := r.Pull(ctx, cache, e.Name, e.Version)
			if err != nil {
				entries = append(entries, lintEntry{Path: where, Name: e.Name, Version: e.Version, Layer: e.Layer, Errors: []string{err.Error()}, Warnings: []string{}})
				continue
			}
			le := lintOne(pulled.Dir)
			le.Path = where
			// Name files by where the pack lives, not by the cache folder.
			for _, list := range [][]string{le.Errors, le.Warnings} {
				for i := range list {
					list[i] = strings.ReplaceAll(list[i], pulled.Dir, where)
				}
			}
			entries = append(entries, le)
		}
	}
	return entries
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
