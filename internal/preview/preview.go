// Package preview computes a draft profile version's effect on the fleet
// before any cluster runs it: for each cluster that would move to it, the
// plan it would run — per layer install, upgrade, remove, swap or
// unchanged, versions from and to, whether values change — or why it would
// refuse the version (a constraint or schema its values break, a pack it
// cannot find). It reads documents only; nothing is written anywhere.
package preview

import (
	"slices"
	"strings"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/values"
)

// Layer actions.
const (
	Install   = "install"
	Upgrade   = "upgrade"
	Remove    = "remove"
	Swap      = "swap"
	Unchanged = "unchanged"
)

// LayerChange is what one layer of a cluster would do.
type LayerChange struct {
	Name          string `json:"name"`
	Action        string `json:"action"`
	FromVersion   string `json:"fromVersion,omitempty"`
	ToVersion     string `json:"toVersion,omitempty"`
	ValuesChanged bool   `json:"valuesChanged"`
	// Package is the pack or chart, and FromPackage what it replaces in a swap.
	Package     string `json:"package,omitempty"`
	FromPackage string `json:"fromPackage,omitempty"`
}

// Changes says in one line what the changing layers would do, e.g.
// "web 1.0.0 → 1.1.0, config remove"; "" when no layer changes.
func Changes(layers []LayerChange) string {
	var parts []string
	for _, l := range layers {
		switch {
		case l.Action == Unchanged:
		case l.Action == Upgrade && l.FromVersion != l.ToVersion:
			parts = append(parts, l.Name+" "+l.FromVersion+" → "+l.ToVersion)
		case l.Action == Upgrade:
			parts = append(parts, l.Name+" values")
		case l.Action == Swap:
			parts = append(parts, l.Name+" "+l.FromPackage+" → "+l.Package)
		default:
			parts = append(parts, l.Name+" "+l.Action)
		}
	}
	return strings.Join(parts, ", ")
}

// ClusterImpact is the draft's effect on one cluster.
type ClusterImpact struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// From is the version of the profile the cluster runs now ("" when it
	// runs none yet).
	From string `json:"from"`
	// Refused is why the cluster would not take the draft; its layers are
	// then empty.
	Refused string `json:"refused,omitempty"`
	// Unknown is why its outcome is not known.
	Unknown string        `json:"unknown,omitempty"`
	Layers  []LayerChange `json:"layers"`

	// before and after are the stacks compared, for a full plan.
	before, after *stack.Stack
}

// Changes says whether the cluster would change at all.
func (c ClusterImpact) Changes() bool {
	return slices.ContainsFunc(c.Layers, func(l LayerChange) bool { return l.Action != Unchanged })
}

// Plan is the cluster's full plan: each layer's change with the diff of
// its values, masked values masked. Empty when it would refuse the draft.
func (c ClusterImpact) Plan() []PlannedLayer {
	var out []PlannedLayer
	if c.after == nil {
		return out
	}
	for _, lc := range c.Layers {
		var from, to map[string]any
		if c.before != nil {
			if l, ok := c.before.Layer(lc.Name); ok {
				from = l.Redacted().Values
			}
		}
		if l, ok := c.after.Layer(lc.Name); ok && lc.Action != Remove {
			to = l.Redacted().Values
		}
		out = append(out, PlannedLayer{LayerChange: lc, ValuesDiff: values.Diff(from, to, "runs", "draft")})
	}
	return out
}

// PlannedLayer is a layer's change with the diff of its values.
type PlannedLayer struct {
	LayerChange
	ValuesDiff string `json:"valuesDiff,omitempty"`
}

// Summary counts the clusters by outcome.
type Summary struct {
	Change    int `json:"change"`
	Unchanged int `json:"unchanged"`
	Refused   int `json:"refused"`
	Unknown   int `json:"unknown,omitempty"`
}

// Impact is a draft version's effect on every cluster that would move to it.
type Impact struct {
	Profile  string          `json:"profile"`
	Version  string          `json:"version"`
	Clusters []ClusterImpact `json:"clusters"`
	Summary  Summary         `json:"summary"`
}

// Fleet is what a preview reads: the profile versions visible to each
// cluster, the clusters, and where packs come from.
type Fleet struct {
	// Profiles lists the versions a cluster sees (its project's and the
	// shared ones); the draft among them.
	Profiles func(c profile.Cluster) []profile.Profile
	Clusters []profile.Cluster
	Packs    func(c profile.Cluster) stack.Packs
	// Facts are what is known of a cluster that runs (its Kubernetes version).
	Facts func(c profile.Cluster) stack.Facts
	// Unknown, when set, says why a cluster's outcome cannot be known
	// (the manager has not reached it), or "".
	Unknown func(c profile.Cluster) string
	// Refusals, when set, says by layer why the cluster itself would
	// refuse the named layers of its stack on the draft (APIs it does
	// not serve), from what is known of it; an error leaves them unchecked.
	Refusals func(c profile.Cluster, after *stack.Stack, layers []string) (map[string]string, error)
}

// Compute previews draft on the fleet: the clusters whose attachment of
// the profile would pick the draft once it is published.
func Compute(draft *v1.ClusterProfile, fleet Fleet) Impact {
	out := Impact{Profile: draft.Spec.Name, Version: draft.Spec.Version, Clusters: []ClusterImpact{}}
	for _, c := range fleet.Clusters {
		visible := fleet.Profiles(c)
		i := slices.IndexFunc(c.Spec.Profiles, func(a v1.ProfileAttachment) bool {
			return a.Name == draft.Spec.Name && picksDraft(visible, a, draft)
		})
		if i < 0 {
			continue
		}
		var ci ClusterImpact
		if why := unknown(fleet, c); why != "" {
			ci = ClusterImpact{Namespace: c.Namespace, Name: c.Name, Unknown: why, Layers: []LayerChange{}}
		} else {
			ci = previewCluster(c, i, visible, draft, fleet)
		}
		switch {
		case ci.Unknown != "":
			out.Summary.Unknown++
		case ci.Refused != "":
			out.Summary.Refused++
		case ci.Changes():
			out.Summary.Change++
		default:
			out.Summary.Unchanged++
		}
		out.Clusters = append(out.Clusters, ci)
	}
	slices.SortFunc(out.Clusters, func(a, b ClusterImpact) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

func unknown(fleet Fleet, c profile.Cluster) string {
	if fleet.Unknown == nil {
		return ""
	}
	return fleet.Unknown(c)
}

// picksDraft says whether the attachment would pick the draft, were it
// published.
func picksDraft(visible []profile.Profile, a v1.ProfileAttachment, draft *v1.ClusterProfile) bool {
	published := make([]profile.Profile, 0, len(visible))
	for _, p := range visible {
		if p.Spec.Name == draft.Spec.Name && p.Spec.Version == draft.Spec.Version {
			cp := *p.ClusterProfile
			cp.Spec.Draft = false
			p.ClusterProfile = &cp
		}
		published = append(published, p)
	}
	got, ok := stack.FindProfile(published, a.Name, a.Version)
	return ok && got.Spec.Version == draft.Spec.Version
}

func previewCluster(c profile.Cluster, attachment int, visible []profile.Profile, draft *v1.ClusterProfile, fleet Fleet) ClusterImpact {
	ci := ClusterImpact{Namespace: c.Namespace, Name: c.Name, Layers: []LayerChange{}}
	packs := fleet.Packs(c)
	facts := fleet.Facts(c)
	before, err := stack.ResolveStack(visible, c, packs, facts)
	if err == nil {
		ci.before, ci.From = before, before.ProfileVersion(draft.Spec.Name)
	}
	onDraft := c
	onDraft.Cluster = c.DeepCopy()
	onDraft.Spec.Profiles[attachment].Version = draft.Spec.Version
	facts.Drafts = true
	after, err := stack.ResolveStack(visible, onDraft, packs, facts)
	if err != nil {
		ci.Refused = err.Error()
		return ci
	}
	ci.after = after
	ci.Layers = Diff(before, after)
	if ci.Refused = refusedByCluster(c, after, ci.Layers, fleet); ci.Refused != "" {
		ci.Layers = []LayerChange{}
	}
	return ci
}

// refusedByCluster says why the cluster would refuse the layers the draft
// installs or changes on it, or "".
func refusedByCluster(c profile.Cluster, after *stack.Stack, changes []LayerChange, fleet Fleet) string {
	if fleet.Refusals == nil {
		return ""
	}
	var changed []string
	for _, l := range changes {
		if l.Action != Unchanged && l.Action != Remove {
			changed = append(changed, l.Name)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	refusals, err := fleet.Refusals(c, after, changed)
	if err != nil {
		return ""
	}
	var out []string
	for _, name := range changed {
		if why, ok := refusals[name]; ok {
			out = append(out, "layer "+name+": "+why)
		}
	}
	return strings.Join(out, "; ")
}

// Diff compares two stacks layer by layer, in the order of after, then the
// layers only before has (removed). A nil before installs everything.
func Diff(before, after *stack.Stack) []LayerChange {
	was := map[string]stack.Layer{}
	if before != nil {
		for _, l := range before.Layers {
			was[l.Name] = l
		}
	}
	var out []LayerChange
	for _, l := range after.Layers {
		lc := LayerChange{Name: l.Name, ToVersion: l.Version, Package: l.Package}
		old, ok := was[l.Name]
		delete(was, l.Name)
		switch {
		case !ok:
			lc.Action, lc.ValuesChanged = Install, len(l.Values) > 0
		case old.Package != l.Package:
			lc.Action, lc.FromVersion, lc.FromPackage, lc.ValuesChanged = Swap, old.Version, old.Package, true
		default:
			lc.FromVersion = old.Version
			lc.ValuesChanged = values.Diff(old.Values, l.Values, "", "") != ""
			lc.Action = Unchanged
			if old.Version != l.Version || old.PackDigest != l.PackDigest || lc.ValuesChanged || old.Namespace != l.Namespace {
				lc.Action = Upgrade
			}
		}
		out = append(out, lc)
	}
	if before != nil {
		for _, l := range before.Layers {
			if _, gone := was[l.Name]; gone {
				out = append(out, LayerChange{Name: l.Name, Action: Remove, FromVersion: l.Version, Package: l.Package})
			}
		}
	}
	return out
}
