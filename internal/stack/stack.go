// Package stack resolves a cluster's attached profiles and the packs they
// use into the exact, ordered list of layers the cluster must run, with
// final values. It is pure: same inputs, same bytes out.
package stack

import (
	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/signature"
	vals "strata.dev/strata/internal/values"
)

// SourceType names what a layer installs from.
type SourceType string

// Source types.
const (
	SourcePack      SourceType = "pack"
	SourceChart     SourceType = "chart"
	SourceManifests SourceType = "manifests"
	SourceZarf      SourceType = "zarf"
)

// Stack is the resolved, ordered list of layers of a cluster.
type Stack struct {
	Cluster string `json:"cluster"`
	// KubernetesVersion comes from the k8s layer.
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Profiles are the versions attached, a range resolved to the version
	// it picked; infrastructure first.
	Profiles []ProfileVersion `json:"profiles,omitempty"`
	Layers   []Layer          `json:"layers"`
	// Warnings are worth a look and never block: pack files that Palette
	// accepts but that look off, constraints that could not be checked.
	Warnings profile.Findings `json:"warnings,omitempty"`
}

// ProfileVersion names one version of a profile.
type ProfileVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ProfileVersion is the version of the named profile in the stack, or "".
func (s *Stack) ProfileVersion(name string) string {
	for _, p := range s.Profiles {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}

// Layer is one resolved layer.
type Layer struct {
	Name           string       `json:"name"`
	Profile        string       `json:"profile"`
	ProfileVersion string       `json:"profileVersion"`
	Kind           v1.LayerKind `json:"kind"`
	Source         SourceType   `json:"source"`
	// Package is the pack or chart name; Version its version.
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	// PackDigest is the digest of the pack's archive when it came from a
	// registry: what the tag pointed at when the stack was resolved.
	PackDigest      string   `json:"packDigest,omitempty"`
	Namespace       string   `json:"namespace"`
	ReleaseName     string   `json:"releaseName"`
	InstallPriority int      `json:"installPriority"`
	DependsOn       []string `json:"dependsOn,omitempty"`
	Presets         []string `json:"presets,omitempty"`
	// Values are final: pack defaults ← presets ← profile ← cluster, with
	// macros expanded and masked values in place.
	Values map[string]any `json:"values"`
	// Secrets lists the value paths that hold masked values.
	Secrets []string `json:"secrets,omitempty"`

	// Spec is the profile's layer as written.
	Spec v1.Layer `json:"-"`
	// Pack is the pack the layer uses, when it uses one.
	Pack *pack.Pack `json:"-"`
	// ChartTrust verifies the signature of the OCI chart of a layer whose
	// chart.verify is set; whoever resolves the stack builds it from what
	// verify names (a stack is resolved without reading Secrets).
	ChartTrust signature.Verifier `json:"-"`
}

// Redacted returns a copy of the layer whose masked values read "(masked)".
func (l Layer) Redacted() Layer {
	if len(l.Secrets) == 0 {
		return l
	}
	secret := map[string]bool{}
	for _, p := range l.Secrets {
		secret[p] = true
	}
	l.Values = walkStrings(vals.DeepCopy(l.Values), "", func(path, s string) string {
		if secret[path] {
			return Masked
		}
		return s
	}).(map[string]any)
	return l
}

// Masked replaces secret values wherever they would be shown.
const Masked = "(masked)"

// Layer returns the layer of that name.
func (s *Stack) Layer(name string) (Layer, bool) {
	for _, l := range s.Layers {
		if l.Name == name {
			return l, true
		}
	}
	return Layer{}, false
}
