package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/render"
	"strata.dev/strata/internal/stack"
)

func newProfileCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Validate and render cluster profiles offline; publish a draft version",
	}
	cmd.AddCommand(newProfileValidateCommand(), newProfileRenderCommand(), newProfilePublishCommand(), newProfilePreviewCommand())
	return cmd
}

// inputFlags are the flags validate and render share.
type inputFlags struct {
	files      []string
	packs      []string
	registries []string
	registryFlags
	cmd *cobra.Command // for its standard input (--password-stdin)
}

func (f *inputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "file or folder of YAML documents (profiles, clusters; other kinds are skipped); repeatable")
	cmd.Flags().StringArrayVar(&f.packs, "packs", nil, "folder of packs (or one pack) the profiles use; repeatable")
	cmd.Flags().StringArrayVar(&f.registries, "registry", nil, "oci://HOST[:PORT]/BASE of a pack registry in Palette's layout; repeatable, searched in order before --packs")
	f.registryFlags.register(cmd)
	f.cmd = cmd
}

// load reads the documents and the packs: from the registries given, in
// order, then from the pack folders.
func (f *inputFlags) load(errOut io.Writer) (*profile.Documents, stack.Packs, error) {
	if len(f.files) == 0 {
		return nil, nil, usageError("-f FILE is required: the profiles (and clusters) to read")
	}
	files, err := expandFiles(f.files)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	docs, err := profile.ReadFiles(files...)
	if err != nil {
		return nil, nil, &exitError{code: ExitFail, err: err}
	}
	for _, s := range docs.Skipped {
		fmt.Fprintf(errOut, "note: skipped %s (not a strata.dev/v1alpha1 ClusterProfile or Cluster)\n", s)
	}
	catalog, err := pack.LoadCatalog(f.packs...)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	if len(f.registries) == 0 {
		return docs, catalog, nil
	}
	regs, cache, err := f.open(f.registries, f.cmd.InOrStdin())
	if err != nil {
		return nil, nil, err
	}
	return docs, &registry.Catalog{Registries: regs, Cache: cache, Folders: catalog}, nil
}

// expandFiles turns folders into the YAML files they hold, recursively.
func expandFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		err = filepath.WalkDir(a, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func newProfileValidateCommand() *cobra.Command {
	var in inputFlags
	cmd := &cobra.Command{
		Use:   "validate -f FILE... [--packs DIR]...",
		Short: "Check profiles, and clusters against the profiles given",
		Long: `Checks every profile on its own and every cluster together with the profiles
and packs it uses: layer order, variables, presets, macros, pack constraints
and schema.yaml rules. Each problem names the file, the field and what was
expected. Exit code 0 when everything is valid, 1 when not, 2 on usage errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, catalog, err := in.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var problems, warnings []string
			seen := map[string]bool{}
			report := func(what string, st *stack.Stack, err error) {
				if err == nil {
					fmt.Fprintf(out, "%s: valid\n", what)
					for _, w := range st.Warnings {
						if line := w.Error(); !seen[line] {
							seen[line] = true
							warnings = append(warnings, line)
						}
					}
					return
				}
				fmt.Fprintf(out, "%s: invalid\n", what)
				for _, line := range errorLines(err) {
					if !seen[line] {
						seen[line] = true
						problems = append(problems, line)
					}
				}
			}
			for _, p := range docs.Profiles {
				st, err := stack.ResolveProfile(p, catalog, stack.Facts{})
				report(profile.ProfileObject(p.Spec.Name, p.Spec.Version), st, err)
			}
			for _, c := range docs.Clusters {
				st, err := stack.ResolveStack(docs.Profiles, c, catalog, stack.Facts{})
				report(profile.ClusterObject(c.Name), st, err)
			}
			for _, p := range problems {
				fmt.Fprintf(out, "  error: %s\n", p)
			}
			for _, w := range warnings {
				fmt.Fprintf(out, "  warning: %s\n", w)
			}
			if len(docs.Profiles)+len(docs.Clusters) == 0 {
				return &exitError{code: ExitFail, err: errors.New("no ClusterProfile or Cluster found in the files given")}
			}
			if len(problems) > 0 {
				return &exitError{code: ExitFail, err: fmt.Errorf("%d problems", len(problems))}
			}
			return nil
		},
	}
	in.register(cmd)
	return cmd
}

// errorLines splits a joined error into its lines.
func errorLines(err error) []string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func newProfileRenderCommand() *cobra.Command {
	var (
		in          inputFlags
		clusterFile string
		output      string
		showSecrets bool
		objects     bool
	)
	cmd := &cobra.Command{
		Use:   "render -f FILE... [--cluster FILE] [--packs DIR]... [-o yaml|json]",
		Short: "Print the resolved stack: layers in install order with final values",
		Long: `Resolves clusters (from --cluster, or those among the -f files) into the
layers they run, in install order, with final values: pack defaults, then
presets, profile values and cluster overrides, with variables and macros
expanded. Without clusters, each profile is rendered on its own with its
variables' defaults. Masked values print as (masked) unless --show-secrets.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "yaml" && output != "json" {
				return usageError("--output: want yaml or json, got %q", output)
			}
			docs, catalog, err := in.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			clusters := docs.Clusters
			if clusterFile != "" {
				// --cluster names the clusters to render; -f supplies profiles.
				cdocs, err := profile.ReadFiles(clusterFile)
				if err != nil {
					return &exitError{code: ExitFail, err: err}
				}
				if len(cdocs.Clusters) == 0 {
					return usageError("--cluster %s: no Cluster document in it", clusterFile)
				}
				clusters = cdocs.Clusters
				docs.Profiles = append(docs.Profiles, cdocs.Profiles...)
			}
			var stacks []*stack.Stack
			var errs []error
			if len(clusters) > 0 {
				for _, c := range clusters {
					st, err := stack.ResolveStack(docs.Profiles, c, catalog, stack.Facts{})
					if err != nil {
						errs = append(errs, err)
						continue
					}
					stacks = append(stacks, st)
				}
			} else {
				for _, p := range docs.Profiles {
					st, err := stack.ResolveProfile(p, catalog, stack.Facts{})
					if err != nil {
						errs = append(errs, err)
						continue
					}
					stacks = append(stacks, st)
				}
			}
			if len(errs) > 0 {
				return &exitError{code: ExitFail, err: errors.Join(errs...)}
			}
			if !showSecrets {
				// Redacted before rendering, so a secret never reaches a template.
				for _, st := range stacks {
					for i := range st.Layers {
						st.Layers[i] = st.Layers[i].Redacted()
					}
				}
			}
			if objects {
				return printObjects(cmd.OutOrStdout(), stacks)
			}
			return printStacks(cmd.OutOrStdout(), stacks, output)
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&clusterFile, "cluster", "", "file holding the cluster(s) to render")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print masked values instead of (masked)")
	cmd.Flags().BoolVar(&objects, "objects", false, "print the Kubernetes objects each layer would apply, as multi-document YAML (like helm template)")
	return cmd
}

// printObjects renders every layer of every stack; a layer that cannot be
// rendered is reported without stopping the others.
func printObjects(out io.Writer, stacks []*stack.Stack) error {
	var errs []error
	for _, st := range stacks {
		fmt.Fprintf(out, "# Cluster: %s\n", st.Cluster)
		for _, l := range st.Layers {
			m, err := render.Manifests(l, render.Options{KubeVersion: st.KubernetesVersion, ClusterName: st.Cluster})
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster %q: %w", st.Cluster, err))
				continue
			}
			fmt.Fprintf(out, "---\n%s", m)
		}
	}
	if len(errs) > 0 {
		return &exitError{code: ExitFail, err: errors.Join(errs...)}
	}
	return nil
}

func printStacks(out io.Writer, stacks []*stack.Stack, output string) error {
	if output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(stacks)
	}
	for i, st := range stacks {
		data, err := marshalOrderedYAML(st)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(out, "---")
		}
		if _, err := out.Write(data); err != nil {
			return err
		}
	}
	return nil
}
