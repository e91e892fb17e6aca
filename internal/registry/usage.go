package registry

import (
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	v1 "strata.dev/strata/api/v1alpha1"
)

// PackUse is one pack version of the fleet's registries: where it is
// published, which profiles and clusters use it, and the newest version
// published beside it.
type PackUse struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Layer   string `json:"layer,omitempty"`
	Digest  string `json:"digest"`
	// Registries are namespace/name of the PackRegistry objects holding it.
	Registries []string `json:"registries"`
	// Profiles are namespace/name of the profile versions that use it.
	Profiles []string `json:"profiles"`
	// Clusters are namespace/name of the clusters running it.
	Clusters []string `json:"clusters"`
	// Newest is the newest version of the pack published, when newer than this one.
	Newest string `json:"newest,omitempty"`
}

// Usage joins what the registries hold (their status) with the profiles
// that name each pack version and the clusters whose layers run it.
func Usage(registries []v1.PackRegistry, profiles []v1.ClusterProfile, clusters []v1.Cluster) []PackUse {
	byKey := map[string]*PackUse{}
	newest := map[string]*semver.Version{}
	for _, r := range registries {
		for _, e := range r.Status.Entries {
			key := e.Name + "@" + e.Version
			u := byKey[key]
			if u == nil {
				u = &PackUse{Name: e.Name, Version: e.Version, Layer: e.Layer, Digest: e.Digest, Registries: []string{}, Profiles: []string{}, Clusters: []string{}}
				byKey[key] = u
			}
			u.Registries = append(u.Registries, strings.TrimPrefix(r.Namespace+"/"+r.Name, "/"))
			if v, err := semver.NewVersion(e.Version); err == nil && (newest[e.Name] == nil || v.GreaterThan(newest[e.Name])) {
				newest[e.Name] = v
			}
		}
	}
	for _, p := range profiles {
		for _, l := range p.Spec.Layers {
			if l.Pack == nil {
				continue
			}
			if u := byKey[l.Pack.Name+"@"+l.Pack.Version]; u != nil {
				u.Profiles = append(u.Profiles, p.Namespace+"/"+p.Name)
			}
		}
	}
	for _, c := range clusters {
		for _, l := range c.Status.Layers {
			if u := byKey[l.Package+"@"+l.Version]; u != nil && l.Source == "pack" {
				u.Clusters = append(u.Clusters, c.Namespace+"/"+c.Name)
			}
		}
	}
	out := make([]PackUse, 0, len(byKey))
	for _, u := range byKey {
		if n := newest[u.Name]; n != nil {
			if v, err := semver.NewVersion(u.Version); err == nil && n.GreaterThan(v) {
				u.Newest = n.Original()
			}
		}
		for _, list := range [][]string{u.Registries, u.Profiles, u.Clusters} {
			sort.Strings(list)
		}
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		vi, ei := semver.NewVersion(out[i].Version)
		vj, ej := semver.NewVersion(out[j].Version)
		if ei == nil && ej == nil {
			return vi.LessThan(vj)
		}
		return out[i].Version < out[j].Version
	})
	return out
}
