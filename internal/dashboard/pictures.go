package dashboard

import (
	"cmp"
	"net/url"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/rollout"
)

// band is one layer of a stack picture.
type band struct {
	Layer string
	// Phase is the layer's phase as the Cluster's status says; empty on a
	// profile version's picture, which runs nowhere.
	Phase string
	// Package and Version name the pack (or chart) whose logo the band shows.
	Package, Version string
	// Pack: Package is a pack, whose page the band links to.
	Pack bool
	// Change is the pending plan's change of the layer: "1.2.0 → 1.3.0",
	// "added", "removed", "values change".
	Change  string
	Message string
}

// Logo is the band's logo address.
func (b band) Logo() string { return logoURL(b.Package, b.Version) }

// Page is the address of the band's pack page.
func (b band) Page() string {
	return "/packs/" + url.PathEscape(b.Package) + "/" + url.PathEscape(b.Version)
}

func logoURL(name, version string) string {
	return "/packs/" + url.PathEscape(name) + "/" + url.PathEscape(cmp.Or(version, "-")) + "/logo"
}

// bandGroup is the bands one profile brings to a stack.
type bandGroup struct {
	Profile, Version string
	Bands            []band
}

// stackPicture is a stack drawn bottom up: groups, then bands, in install
// order (the page reverses them so the first is at the bottom).
type stackPicture struct {
	Groups []bandGroup
	Layers int
}

// clusterStack draws a cluster's layers as its status lists them, grouped
// by profile, with what its pending plan would change.
func clusterStack(cl *v1.Cluster) stackPicture {
	planned := map[string]v1.PlannedLayer{}
	var added []v1.PlannedLayer
	if p := cl.Status.PendingPlan; p != nil {
		for _, l := range p.Layers {
			planned[l.Name] = l
			if l.Action == "install" && !slices.ContainsFunc(cl.Status.Layers, func(s v1.LayerStatus) bool { return s.Name == l.Name }) {
				added = append(added, l)
			}
		}
	}
	var pic stackPicture
	for _, l := range cl.Status.Layers {
		b := band{Layer: l.Name, Phase: l.Phase, Package: packageOf(l), Version: l.Version, Pack: l.Source == "pack", Message: l.Message}
		if pl, ok := planned[l.Name]; ok {
			b.Change = changeOf(pl)
		}
		pic.add(l.Profile, l.ProfileVersion, b)
	}
	for _, l := range added {
		pic.add("pending", "", band{Layer: l.Name, Phase: "Pending", Package: l.Name, Version: l.ToVersion, Change: changeOf(l)})
	}
	return pic
}

func (p *stackPicture) add(profile, version string, b band) {
	if n := len(p.Groups); n == 0 || p.Groups[n-1].Profile != profile || p.Groups[n-1].Version != version {
		p.Groups = append(p.Groups, bandGroup{Profile: profile, Version: version})
	}
	g := &p.Groups[len(p.Groups)-1]
	g.Bands = append(g.Bands, b)
	p.Layers++
}

// changeOf says in a few words what a planned layer change does.
func changeOf(l v1.PlannedLayer) string {
	switch l.Action {
	case "install":
		return "added"
	case "remove":
		return "removed"
	case "upgrade":
		if l.FromVersion != "" && l.ToVersion != "" && l.FromVersion != l.ToVersion {
			return l.FromVersion + " → " + l.ToVersion
		}
		if l.ValuesDiff != "" {
			return "values change"
		}
		return "changes"
	case "refuse":
		return "refused"
	}
	return ""
}

// profileStack draws a profile version's layers, bottom up.
func profileStack(p *v1.ClusterProfile) stackPicture {
	var pic stackPicture
	for _, l := range p.Spec.Layers {
		name, version := l.Name, ""
		switch {
		case l.Pack != nil:
			name, version = l.Pack.Name, l.Pack.Version
		case l.Manifests != nil && l.Manifests.FromPack != nil:
			name, version = l.Manifests.FromPack.Name, l.Manifests.FromPack.Version
		case l.Chart != nil:
			name, version = cmp.Or(l.Chart.Name, l.Name), l.Chart.Version
		}
		pic.add(p.Spec.Name, p.Spec.Version, band{Layer: l.Name, Package: name, Version: version, Pack: l.Pack != nil})
	}
	return pic
}

// phaseCount is how many clusters are in one phase.
type phaseCount struct {
	Phase   string
	Count   int
	Percent float64
	// Offset is where its segment starts on the bar, in percent.
	Offset float64
}

// versionCount is how many clusters run one version of a profile.
type versionCount struct {
	Version string
	Count   int
	Percent float64
	Offset  float64
	// Newest marks the newest version published.
	Newest bool
}

// profileBar is one profile's versions across the fleet.
type profileBar struct {
	Name     string
	Clusters int
	Versions []versionCount
}

// rolloutBrief is a roll-out in progress: where it is.
type rolloutBrief struct {
	Namespace, Profile, Version, Phase, Wave string
	Done, Total                              int
}

// fleetPicture is the fleet at a glance.
type fleetPicture struct {
	Clusters int
	Phases   []phaseCount
	Profiles []profileBar
	Rollouts []rolloutBrief
}

// fleetOf counts the clusters by phase and by the version of each profile
// they run, newest published marked, and lists the roll-outs in progress.
func fleetOf(clusters []v1.Cluster, profiles []v1.ClusterProfile) fleetPicture {
	pic := fleetPicture{Clusters: len(clusters)}
	phases := map[string]int{}
	runs := map[string]map[string]int{}
	newest := map[string]*semver.Version{}
	for i := range clusters {
		cl := &clusters[i]
		phases[toRow(cl).Phase]++
		for _, ref := range controller.AttachedProfiles(cl) {
			if runs[ref.Name] == nil {
				runs[ref.Name] = map[string]int{}
			}
			runs[ref.Name][cmp.Or(ref.Version, "none")]++
		}
	}
	for _, p := range profiles {
		if v, err := semver.NewVersion(p.Spec.Version); err == nil && !p.Spec.Draft && (newest[p.Spec.Name] == nil || v.GreaterThan(newest[p.Spec.Name])) {
			newest[p.Spec.Name] = v
		}
	}
	for _, ph := range []string{string(v1.ClusterReady), "Pending", "Provisioning", string(v1.ClusterFailed)} {
		if n := phases[ph]; n > 0 || ph != "Provisioning" {
			pic.Phases = append(pic.Phases, phaseCount{Phase: ph, Count: n, Percent: percent(n, len(clusters))})
		}
		delete(phases, ph)
	}
	for ph, n := range phases { // phases this list does not know yet
		pic.Phases = append(pic.Phases, phaseCount{Phase: ph, Count: n, Percent: percent(n, len(clusters))})
	}
	offset := 0.0
	for i := range pic.Phases {
		pic.Phases[i].Offset = offset
		offset += pic.Phases[i].Percent
	}
	for name, versions := range runs {
		bar := profileBar{Name: name}
		for v, n := range versions {
			bar.Clusters += n
			vc := versionCount{Version: v, Count: n}
			if nv, err := semver.NewVersion(v); err == nil && newest[name] != nil && nv.Equal(newest[name]) {
				vc.Newest = true
			}
			bar.Versions = append(bar.Versions, vc)
		}
		for i := range bar.Versions {
			bar.Versions[i].Percent = percent(bar.Versions[i].Count, bar.Clusters)
		}
		slices.SortFunc(bar.Versions, func(a, b versionCount) int { return compareVersions(b.Version, a.Version) })
		offset := 0.0
		for i := range bar.Versions {
			bar.Versions[i].Offset = offset
			offset += bar.Versions[i].Percent
		}
		pic.Profiles = append(pic.Profiles, bar)
	}
	slices.SortFunc(pic.Profiles, func(a, b profileBar) int { return strings.Compare(a.Name, b.Name) })
	for i := range profiles {
		report, err := rollout.ReportOf(&profiles[i])
		if err != nil || report.Phase == string(v1.RolloutCompleted) || report.Phase == string(v1.RolloutRolledBack) {
			continue
		}
		brief := rolloutBrief{Namespace: profiles[i].Namespace, Profile: report.Profile, Version: report.Version, Phase: report.Phase}
		for _, w := range report.Waves {
			for _, c := range w.Clusters {
				brief.Total++
				if c.State == string(v1.ClusterRolloutHealthy) {
					brief.Done++
				} else if brief.Wave == "" {
					brief.Wave = w.Name // the first wave not through
				}
			}
		}
		if brief.Total > 0 {
			pic.Rollouts = append(pic.Rollouts, brief)
		}
	}
	return pic
}

func percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

// compareVersions orders semantic versions, others after them by text.
func compareVersions(a, b string) int {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	switch {
	case errA == nil && errB == nil:
		return va.Compare(vb)
	case errA == nil:
		return 1
	case errB == nil:
		return -1
	}
	return strings.Compare(a, b)
}
