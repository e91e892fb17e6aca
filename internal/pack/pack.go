// Package pack reads packs: Palette's pack format (pack.json, values.yaml,
// presets.yaml, schema.yaml, charts/, manifests/) and plain Helm charts. It
// is pure apart from reading the pack's own files, and never panics on a
// broken pack: every finding is a Problem naming file, field and what was
// expected.
package pack

import (
	"fmt"
	"sort"
	"strings"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
)

// Pack is a loaded pack.
type Pack struct {
	// Path is the folder (or chart archive) the pack was read from.
	Path string `json:"path"`
	Metadata
	// Values is values.yaml, including the `pack:` section.
	Values map[string]any `json:"-"`
	// ValuesYAML is values.yaml as written, comments included.
	ValuesYAML     []byte       `json:"-"`
	Settings       Settings     `json:"settings"`
	EnabledPresets []PresetRef  `json:"enabledPresets,omitempty"`
	Presets        []Preset     `json:"presets,omitempty"`
	Schema         []Constraint `json:"schema,omitempty"`
	Charts         []Chart      `json:"charts,omitempty"`
	Manifests      []Manifest   `json:"manifests,omitempty"`
	// PlainChart is true for a Helm chart read as a pack.
	PlainChart bool `json:"plainChart,omitempty"`
	// Digest of the pack's archive when it came from a registry.
	Digest string `json:"digest,omitempty"`
	// Warnings found while reading the pack: it is usable, but something
	// looks off (shown by lint, validation and the dashboard).
	Warnings Problems `json:"-"`
}

// Chart is a Helm chart shipped in a pack.
type Chart struct {
	// Name is the chart's name; its values sit under charts.<Name>.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Path of the archive or folder, as listed in pack.json.
	Path  string         `json:"path"`
	Chart *chartv2.Chart `json:"-"`
}

// Manifest is a templated Kubernetes manifest shipped in a pack; its
// template sees .Values = manifests.<Name> of the layer's values.
type Manifest struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Template is the file as read: charts made of it share these bytes.
	Template []byte `json:"-"`
}

// ID is "name-version", the way packs are named in registries.
func (p *Pack) ID() string { return p.Name + "-" + p.Version }

// Preset returns the preset with the given reference.
func (p *Pack) Preset(ref PresetRef) (Preset, bool) {
	for _, pr := range p.Presets {
		if pr.Ref() == ref {
			return pr, true
		}
	}
	return Preset{}, false
}

// ChartValues returns the values of a chart: charts.<name>. Some real packs
// (kubewatch-1.0.7) with a single chart put its values directly under
// `charts:`; those are honoured as they are.
func ChartValues(values map[string]any, chartName string, onlyChart bool) map[string]any {
	charts, _ := values["charts"].(map[string]any)
	if v, ok := charts[chartName].(map[string]any); ok {
		return v
	}
	if onlyChart && charts != nil {
		if _, named := charts[chartName]; !named {
			return charts
		}
	}
	return map[string]any{}
}

// ManifestValues returns manifests.<name>.
func ManifestValues(values map[string]any, name string) map[string]any {
	manifests, _ := values["manifests"].(map[string]any)
	v, _ := manifests[name].(map[string]any)
	if v == nil {
		return map[string]any{}
	}
	return v
}

// SchemaFor returns the constraint on a values path, if any.
func (p *Pack) SchemaFor(path string) (Constraint, bool) {
	i := sort.Search(len(p.Schema), func(i int) bool { return p.Schema[i].Path >= path })
	if i < len(p.Schema) && p.Schema[i].Path == path {
		return p.Schema[i], true
	}
	return Constraint{}, false
}

// Lookup finds a dotted path in nested values.
func Lookup(values map[string]any, path string) (any, bool) {
	var cur any = values
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Found is one value a schema path names, with its concrete path.
type Found struct {
	Path  string
	Value any
}

// LookupAll finds a schema path in nested values. A segment "$[]" stands
// for every element of a list, as Palette's schema.yaml writes list rules
// ("registry.addresses.$[]"); concrete paths name elements as "a.b[0]".
func LookupAll(values map[string]any, path string) []Found {
	found := []Found{{Value: values}}
	for _, key := range strings.Split(path, ".") {
		var next []Found
		for _, f := range found {
			if key == "$[]" {
				list, _ := f.Value.([]any)
				for i, v := range list {
					next = append(next, Found{Path: fmt.Sprintf("%s[%d]", f.Path, i), Value: v})
				}
				continue
			}
			m, ok := f.Value.(map[string]any)
			if !ok {
				continue
			}
			if v, ok := m[key]; ok {
				p := key
				if f.Path != "" {
					p = f.Path + "." + key
				}
				next = append(next, Found{Path: p, Value: v})
			}
		}
		found = next
	}
	return found
}

// String names the pack for messages.
func (p *Pack) String() string {
	return fmt.Sprintf("pack %s", p.ID())
}
