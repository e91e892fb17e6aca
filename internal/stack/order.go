package stack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
)

// checkDependencies applies every pack's dependency constraints to the
// packs of the whole cluster, across all its profiles.
func (r *resolver) checkDependencies() {
	present := map[string]*layerState{}
	for _, ls := range r.layers {
		if ls.out.Pack != nil {
			if _, ok := present[ls.out.Pack.Name]; !ok {
				present[ls.out.Pack.Name] = ls
			}
		}
	}
	for _, ls := range r.layers {
		p := ls.out.Pack
		if p == nil || p.Constraints == nil {
			continue
		}
		for _, d := range p.Constraints.Dependencies {
			other, ok := present[d.PackName]
			field := fmt.Sprintf("layer %q", ls.spec.Name)
			switch {
			case d.Type == pack.DependencyRequired && !ok && r.preview:
				// Another profile of the cluster may bring it; only a cluster can tell.
			case d.Type == pack.DependencyRequired && !ok:
				r.clusterFinding(field, "pack %s requires pack %s%s, and no layer of the cluster uses it", p.ID(), d.PackName, rangeText(d))
			case !ok:
			case d.Type == pack.DependencyNotSupported && inRange(other.out.Pack.Version, d):
				r.clusterFinding(field, "pack %s does not support %s %s (layer %q)%s", p.ID(), d.PackName, other.out.Pack.Version, other.spec.Name, rangeText(d))
			case d.Type == pack.DependencyUpgrade && !inRange(other.out.Pack.Version, d):
				r.clusterFinding(field, "pack %s is upgraded together with %s: want %s%s, the cluster has %s (layer %q); move that layer to a version in range along with this one", p.ID(), d.PackName, d.PackName, rangeText(d), other.out.Pack.Version, other.spec.Name)
			case d.Type != pack.DependencyNotSupported && !inRange(other.out.Pack.Version, d):
				r.clusterFinding(field, "pack %s needs %s%s, the cluster has %s (layer %q)", p.ID(), d.PackName, rangeText(d), other.out.Pack.Version, other.spec.Name)
			}
		}
	}
}

func rangeText(d pack.Dependency) string {
	var parts []string
	if d.MinVersion != "" {
		parts = append(parts, ">= "+d.MinVersion)
	}
	if d.MaxVersion != "" {
		parts = append(parts, "<= "+d.MaxVersion)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, ", ")
}

// inRange reports whether version lies within the dependency's bounds. A
// bound written with fewer than three parts ("1.21") covers the whole
// release line, as pack authors mean it.
func inRange(version string, d pack.Dependency) bool {
	v, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	// Compare releases only: a pre-release of 1.2.0 satisfies >= 1.2.0 here.
	if v.Prerelease() != "" {
		nv, _ := v.SetPrerelease("")
		v = &nv
	}
	if d.MinVersion != "" {
		if min, err := semver.NewVersion(d.MinVersion); err == nil && v.LessThan(min) {
			return false
		}
	}
	if d.MaxVersion != "" {
		max, err := semver.NewVersion(d.MaxVersion)
		if err != nil {
			return true
		}
		switch strings.Count(strings.TrimPrefix(d.MaxVersion, "v"), ".") {
		case 0:
			return v.Major() <= max.Major()
		case 1:
			return v.Major() < max.Major() || (v.Major() == max.Major() && v.Minor() <= max.Minor())
		default:
			return !v.GreaterThan(max)
		}
	}
	return true
}

// order returns the layers in install order: the infrastructure profile's
// layers first (os, k8s, cni, csi, then its add-ons), then each add-on
// profile in the cluster's order; add-ons sorted by install priority (stable),
// and finally every layer after the layers it depends on.
func (r *resolver) order() []*layerState {
	var ordered []*layerState
	for _, att := range r.atts {
		var infra, addons []*layerState
		for _, ls := range r.layers {
			if ls.att != att {
				continue
			}
			if ls.spec.Kind == v1.LayerAddon {
				addons = append(addons, ls)
			} else {
				infra = append(infra, ls)
			}
		}
		sort.SliceStable(addons, func(i, j int) bool { return addons[i].out.InstallPriority < addons[j].out.InstallPriority })
		ordered = append(ordered, infra...)
		ordered = append(ordered, addons...)
	}

	for _, ls := range ordered {
		for j, dep := range ls.spec.DependsOn {
			if _, ok := r.byName[dep]; !ok {
				r.layerFinding(ls, fmt.Sprintf(".dependsOn[%d]", j), "no layer %q in the cluster: want one of %s", dep, strings.Join(r.layerNames(), ", "))
			}
		}
	}

	placed := map[string]bool{}
	var out []*layerState
	remaining := ordered
	for len(remaining) > 0 {
		next := -1
		for i, ls := range remaining {
			ready := true
			for _, dep := range ls.spec.DependsOn {
				if _, known := r.byName[dep]; known && !placed[dep] {
					ready = false
					break
				}
			}
			if ready {
				next = i
				break
			}
		}
		if next < 0 {
			names := make([]string, len(remaining))
			for i, ls := range remaining {
				names[i] = ls.spec.Name
			}
			r.clusterFinding("dependsOn", "dependency cycle among layers %s", strings.Join(names, ", "))
			return append(out, remaining...)
		}
		placed[remaining[next].spec.Name] = true
		out = append(out, remaining[next])
		remaining = append(remaining[:next:next], remaining[next+1:]...)
	}
	return out
}
