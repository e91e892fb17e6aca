// Package render turns a resolved layer into a Helm chart and its values —
// the one form every layer type takes, so that installing, upgrading,
// pruning and history work the same for all of them — and renders it to
// Kubernetes objects client-side, as `helm template` does.
package render

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/opencontainers/go-digest"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/zarf"
)

// ErrNotLocal marks layers whose chart must be fetched first (remote Helm
// repositories, OCI registries, Zarf packages): rendering offline cannot.
var ErrNotLocal = fmt.Errorf("its content is fetched when the layer is deployed")

// LayerChart returns the chart a layer installs and the values it installs
// it with.
//
//   - a pack with one chart and nothing else: that chart, with charts.<name>;
//   - a pack with one templated manifest: a generated chart whose template is
//     the manifest, with manifests.<name> as .Values;
//   - anything else (several charts, charts and manifests): a generated
//     parent chart with each part as a subchart, each seeing its own values,
//     the way Helm scopes subchart values;
//   - inline manifests: a generated chart that emits them verbatim.
func LayerChart(l stack.Layer, opts Options) (*chartv2.Chart, map[string]any, error) {
	ch, values, err := layerChart(l, opts)
	return ownCopy(ch), values, err
}

func layerChart(l stack.Layer, opts Options) (*chartv2.Chart, map[string]any, error) {
	switch {
	case l.Source == stack.SourceManifests && l.Spec.Manifests != nil && l.Spec.Manifests.Inline != "":
		return inlineChart(l), map[string]any{}, nil
	case l.Pack != nil:
		return packChart(l, l.Pack, opts)
	case l.Source == stack.SourceZarf && l.Spec.Zarf != nil:
		ch, _, err := Zarf(l, opts)
		return ch, map[string]any{}, err
	case l.Source == stack.SourceChart && l.Spec.Chart != nil && opts.Charts != nil:
		ch, err := opts.Charts.Fetch(l.Spec.Chart, l.ChartTrust)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %q: %w", l.Name, err)
		}
		// A chart layer's values are the chart's values.
		return ch, l.Values, nil
	default:
		return nil, nil, fmt.Errorf("layer %q (%s %s): %w", l.Name, l.Source, l.Package, ErrNotLocal)
	}
}

// ownCopy returns a chart tree of its own for one install or render:
// Helm removes from the chart it is given the subcharts that its values
// disable, and their Chart.yaml entries. Packs' and repositories' charts
// are loaded once and shared by every cluster, so without a copy a
// subchart one cluster disables would be gone for all. Templates, files
// and default values, which Helm only reads, stay shared.
func ownCopy(ch *chartv2.Chart) *chartv2.Chart {
	if ch == nil {
		return nil
	}
	c := *ch
	if ch.Metadata != nil {
		md := *ch.Metadata
		if ch.Metadata.Dependencies != nil {
			md.Dependencies = make([]*chartv2.Dependency, len(ch.Metadata.Dependencies))
			for i, d := range ch.Metadata.Dependencies {
				if d != nil {
					dc := *d
					md.Dependencies[i] = &dc
				}
			}
		}
		c.Metadata = &md
	}
	deps := ch.Dependencies()
	subcharts := make([]*chartv2.Chart, len(deps))
	for i, d := range deps {
		subcharts[i] = ownCopy(d)
	}
	c.SetDependencies(subcharts...)
	return &c
}

// Options carry facts about the target cluster into rendering.
type Options struct {
	// KubeVersion of the cluster, e.g. "1.37.2": charts check it.
	KubeVersion string
	// ClusterName and APIServer are what Palette gives pack manifests as
	// .Spectro.cluster and .Spectro.apiServer.
	ClusterName string
	APIServer   string
	// Charts fetches the charts of chart layers; without it they cannot be
	// rendered (offline).
	Charts ChartFetcher
	// Zarf fetches Zarf packages published to OCI registries (oci://…);
	// without it only archives and folders on disk are read.
	Zarf ZarfFetcher
}

// ZarfFetcher fetches a Zarf package published to an OCI registry, and
// says the digest of the manifest it came from.
type ZarfFetcher interface {
	FetchZarf(ctx context.Context, ref string) (*zarf.Source, digest.Digest, error)
}

// ChartFetcher fetches a chart from a Helm repository or OCI registry.
type ChartFetcher interface {
	// Fetch returns the chart src names; with src.Verify set, only when
	// trust verifies its signature.
	Fetch(src *v1.ChartSource, trust signature.Verifier) (*chartv2.Chart, error)
}

// spectroKey holds .Spectro's facts in a manifest chart's values.
const spectroKey = "__spectro"

// spectroRefs turns .Spectro.x and $.Spectro.x in pack manifests into
// the values that carry them. Plain string search, not a regular
// expression: manifests are rendered for every cluster at every plan, and
// some are hundreds of kilobytes of CRDs.
var spectroRefs = strings.NewReplacer("$.Spectro.", "$.Values."+spectroKey+".", ".Spectro.", "$.Values."+spectroKey+".")

func usesSpectro(template []byte) bool { return bytes.Contains(template, []byte(".Spectro.")) }

func (o Options) spectro() map[string]any {
	return map[string]any{"cluster": o.ClusterName, "apiServer": o.APIServer}
}

func packChart(l stack.Layer, p *pack.Pack, opts Options) (*chartv2.Chart, map[string]any, error) {
	charts, manifests := p.Charts, p.Manifests
	if l.Source == stack.SourceManifests {
		charts = nil // manifests.fromPack takes only the pack's kubeManifests
	}
	switch {
	case len(charts) == 1 && len(manifests) == 0:
		return charts[0].Chart, pack.ChartValues(l.Values, charts[0].Name, true), nil
	case len(charts) == 0 && len(manifests) == 1:
		m := manifests[0]
		return manifestChart(m.Name, p.Version, m), manifestValues(l.Values, m, opts), nil
	case len(charts) == 0 && len(manifests) == 0:
		// An os or k8s pack describes the cluster; it installs no objects.
		return emptyChart(l.Name, p.Version), map[string]any{}, nil
	}
	parent := emptyChart(l.Name, p.Version)
	// Helm processes each subchart's own conditions and tags only below a
	// parent whose Chart.yaml lists dependencies. Listing none, but not
	// nil, keeps every part and has Helm go on into each, as it does into
	// charts installed alone.
	parent.Metadata.Dependencies = []*chartv2.Dependency{}
	values := map[string]any{}
	for _, c := range charts {
		parent.AddDependency(c.Chart)
		values[c.Name] = pack.ChartValues(l.Values, c.Name, len(charts) == 1)
	}
	for _, m := range manifests {
		parent.AddDependency(manifestChart(m.Name, p.Version, m))
		values[m.Name] = manifestValues(l.Values, m, opts)
	}
	return parent, values, nil
}

// chartVersion makes a pack version acceptable to Helm, which wants semver.
func chartVersion(v string) string {
	if strings.Count(v, ".") == 1 {
		return v + ".0"
	}
	return v
}

func emptyChart(name, version string) *chartv2.Chart {
	return &chartv2.Chart{Metadata: &chartv2.Metadata{
		APIVersion: chartv2.APIVersionV2, Name: name, Version: chartVersion(version), Type: "application",
		Description: "Generated by Strata for layer " + name,
	}}
}

// manifestChart makes a pack manifest a chart template. Helm's top-level
// object has no .Spectro, so references to it read the values instead.
func manifestChart(name, version string, m pack.Manifest) *chartv2.Chart {
	c := emptyChart(name, version)
	tmpl := m.Template
	if usesSpectro(tmpl) {
		tmpl = []byte(spectroRefs.Replace(string(tmpl)))
	}
	c.Templates = []*common.File{{Name: "templates/" + baseName(m.Path), Data: tmpl}}
	return c
}

// manifestValues is manifests.<name>, plus .Spectro's facts when the
// manifest uses them.
func manifestValues(values map[string]any, m pack.Manifest, opts Options) map[string]any {
	v := pack.ManifestValues(values, m.Name)
	if usesSpectro(m.Template) {
		v = maps.Clone(v)
		v[spectroKey] = opts.spectro()
	}
	return v
}

// inlineChart emits inline manifests as they are: they are not templates,
// so they go in as a file that a one-line template prints.
func inlineChart(l stack.Layer) *chartv2.Chart {
	c := emptyChart(l.Name, "0.0.0")
	c.Files = []*common.File{{Name: "manifests/inline.yaml", Data: []byte(l.Spec.Manifests.Inline)}}
	c.Templates = []*common.File{{Name: "templates/inline.yaml", Data: []byte(`{{ .Files.Get "manifests/inline.yaml" }}`)}}
	return c
}

func baseName(path string) string {
	return path[strings.LastIndex(path, "/")+1:]
}
