package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/preview"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

// newProfilePreviewCommand previews draft profile versions on Cluster
// documents: which clusters would change, how, and which would refuse.
func newProfilePreviewCommand() *cobra.Command {
	var in inputFlags
	var mf mgmtFlags
	var clusterFiles []string
	var output, only string
	cmd := &cobra.Command{
		Use:   "preview PROFILE VERSION [-n NS] | preview [PROFILE VERSION] -f FILE... --clusters FILE...",
		Short: "Show what a draft profile version would do to each cluster before it is published",
		Long: `With PROFILE VERSION and no -f, shows the impact the manager keeps for a draft
version on the live fleet (status.impact). Offline, with -f, previews each draft
version among the profiles given (or the one named) on the
Cluster documents given: for every cluster whose attachment would pick it once
published, the plan it would run — per layer install, upgrade, remove, swap or
unchanged, versions from and to, whether values change — or why it would refuse
it. Offline: nothing is read from or written to any cluster. Exit code 0 when no
cluster would refuse, 1 when one would, 2 on usage errors.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return usageError("give PROFILE VERSION, or nothing to preview every draft")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(in.files) == 0 && len(args) == 2 {
				return previewOnline(cmd.OutOrStdout(), &mf, args[0], args[1], only, output)
			}
			docs, catalog, err := in.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			clusters := docs.Clusters
			if len(clusterFiles) > 0 {
				files, err := expandFiles(clusterFiles)
				if err != nil {
					return usageError("--clusters: %v", err)
				}
				more, err := profile.ReadFiles(files...)
				if err != nil {
					return &exitError{code: ExitUsage, err: err}
				}
				clusters = append(clusters, more.Clusters...)
			}
			var drafts []profile.Profile
			for _, p := range docs.Profiles {
				if len(args) == 2 && p.Spec.Name == args[0] && p.Spec.Version == args[1] || len(args) == 0 && p.Spec.Draft {
					drafts = append(drafts, p)
				}
			}
			if len(drafts) == 0 {
				if len(args) == 2 {
					return usageError("profile %s %s is not among the files given", args[0], args[1])
				}
				return usageError("no draft version (spec.draft: true) among the profiles given")
			}
			fleet := preview.Fleet{
				Profiles: func(profile.Cluster) []profile.Profile { return docs.Profiles },
				Clusters: clusters,
				Packs:    func(profile.Cluster) stack.Packs { return catalog },
				Facts:    func(profile.Cluster) stack.Facts { return stack.Facts{} },
			}
			out := cmd.OutOrStdout()
			refused := 0
			for _, d := range drafts {
				impact := preview.Compute(d.ClusterProfile, fleet)
				refused += impact.Summary.Refused
				switch {
				case only != "":
					err = printClusterPlan(out, impact, only, output)
				case output == "json":
					err = json.NewEncoder(out).Encode(impact)
				default:
					printImpact(out, impact)
				}
				if err != nil {
					return err
				}
			}
			if refused > 0 {
				return &exitError{code: ExitFail, err: fmt.Errorf("%d clusters would refuse", refused)}
			}
			return nil
		},
	}
	in.register(cmd)
	mf.register(cmd)
	cmd.Flags().StringArrayVar(&clusterFiles, "clusters", nil, "file or folder of Cluster documents to preview on; repeatable (Clusters among -f count too)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&only, "cluster", "", "show one cluster's full plan, with each layer's values diff (masked values masked)")
	return cmd
}

// previewOnline prints the impact the manager computed for a draft.
func previewOnline(out io.Writer, f *mgmtFlags, name, version, only, output string) error {
	_, p, err := getProfileVersion(f, name, version)
	if err != nil {
		return err
	}
	im := p.Status.Impact
	switch {
	case !p.Spec.Draft:
		return &exitError{code: ExitFail, err: fmt.Errorf("%s %s is published: a preview is of a draft version (spec.draft: true)", name, version)}
	case im == nil:
		return &exitError{code: ExitFail, err: fmt.Errorf("%s %s: the manager has not computed its impact yet", name, version)}
	}
	impact := preview.Impact{Profile: name, Version: version, Clusters: []preview.ClusterImpact{}, Summary: preview.Summary{
		Change: int(im.Summary.Change), Unchanged: int(im.Summary.Unchanged), Refused: int(im.Summary.Refused), Unknown: int(im.Summary.Unknown),
	}}
	for _, c := range im.Clusters {
		ci := preview.ClusterImpact{Namespace: c.Namespace, Name: c.Name, From: c.From, Refused: c.Refused, Unknown: c.Unknown, Layers: []preview.LayerChange{}}
		for _, l := range c.Layers {
			ci.Layers = append(ci.Layers, preview.LayerChange{Name: l.Name, Action: l.Action, FromVersion: l.FromVersion, ToVersion: l.ToVersion, ValuesChanged: l.ValuesChanged})
		}
		impact.Clusters = append(impact.Clusters, ci)
	}
	if im.ObservedGeneration != p.Generation {
		// Never shown as current: the draft changed since.
		fmt.Fprintf(out, "note: computed for generation %d of the draft, which is at %d now; the manager is computing it again\n", im.ObservedGeneration, p.Generation)
	}
	switch {
	case only != "":
		return printClusterPlan(out, impact, only, output)
	case output == "json":
		return json.NewEncoder(out).Encode(impact)
	}
	printImpact(out, impact)
	if im.Truncated {
		fmt.Fprintf(out, "(the first %d clusters are listed; the counts are of all)\n", len(im.Clusters))
	}
	return nil
}

// printImpact prints a draft's impact as a table.
func printImpact(out io.Writer, impact preview.Impact) {
	s := impact.Summary
	fmt.Fprintf(out, "%s %s: %d would change, %d unchanged, %d would refuse", impact.Profile, impact.Version, s.Change, s.Unchanged, s.Refused)
	if s.Unknown > 0 {
		fmt.Fprintf(out, ", %d not known", s.Unknown)
	}
	fmt.Fprintln(out)
	if len(impact.Clusters) == 0 {
		fmt.Fprintln(out, "  no cluster follows it")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tFROM\tCHANGE\tREFUSED")
	for _, c := range impact.Clusters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clusterKey(c), dash(c.From), changeSummary(c), dash(firstLine(c.Refused+c.Unknown)))
	}
	tw.Flush()
}

// changeSummary says in one line what a cluster's layers would do.
func changeSummary(c preview.ClusterImpact) string {
	if c.Refused != "" || c.Unknown != "" {
		return "-"
	}
	if s := preview.Changes(c.Layers); s != "" {
		return s
	}
	return "unchanged"
}

// printClusterPlan prints one cluster's full plan.
func printClusterPlan(out io.Writer, impact preview.Impact, name, output string) error {
	for _, c := range impact.Clusters {
		if c.Name != name && clusterKey(c) != name {
			continue
		}
		if output == "json" {
			return json.NewEncoder(out).Encode(struct {
				preview.ClusterImpact
				Plan []preview.PlannedLayer `json:"plan"`
			}{c, c.Plan()})
		}
		fmt.Fprintf(out, "%s with %s %s (from %s):\n", clusterKey(c), impact.Profile, impact.Version, dash(c.From))
		if c.Unknown != "" {
			fmt.Fprintf(out, "  %s\n", c.Unknown)
			return nil
		}
		if c.Refused != "" {
			fmt.Fprintf(out, "  refuses it: %s\n", c.Refused)
			return nil
		}
		plan := c.Plan()
		if plan == nil { // from the manager's status: no values to diff
			for _, l := range c.Layers {
				plan = append(plan, preview.PlannedLayer{LayerChange: l})
			}
		}
		for _, l := range plan {
			fmt.Fprintf(out, "  %s: %s", l.Name, l.Action)
			if l.FromVersion != "" || l.ToVersion != "" {
				fmt.Fprintf(out, " %s → %s", dash(l.FromVersion), dash(l.ToVersion))
			}
			if l.ValuesChanged && l.ValuesDiff == "" {
				fmt.Fprint(out, ", values change (the diff: strata profile preview -f … --cluster NAME)")
			}
			fmt.Fprintln(out)
			for _, line := range strings.Split(strings.TrimRight(l.ValuesDiff, "\n"), "\n") {
				if line != "" {
					fmt.Fprintf(out, "      %s\n", line)
				}
			}
		}
		return nil
	}
	return &exitError{code: ExitUsage, err: errors.New("--cluster " + name + ": not among the clusters that would move to " + impact.Profile + " " + impact.Version)}
}

func clusterKey(c preview.ClusterImpact) string {
	if c.Namespace == "" {
		return c.Name
	}
	return c.Namespace + "/" + c.Name
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
