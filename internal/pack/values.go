package pack

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Settings is the `pack:` section of values.yaml: how the pack is installed.
type Settings struct {
	// Namespace the pack's charts and manifests install into.
	Namespace string `json:"namespace,omitempty"`
	// ReleaseNameOverride maps a chart or manifest name to a release name.
	ReleaseNameOverride map[string]string `json:"releaseNameOverride,omitempty"`
	// NamespaceLabels maps a namespace to labels "k=v,k2=v2" set on it.
	NamespaceLabels map[string]string `json:"namespaceLabels,omitempty"`
	// InstallPriority orders layers within a profile: lower installs first.
	InstallPriority int `json:"installPriority,omitempty"`
	// Images the pack runs, as listed under content.images.
	Images []string `json:"images,omitempty"`
}

// installPriorityKey is Palette's key for install order inside `pack:`.
const installPriorityKey = "spectrocloud.com/install-priority"

// enabledPresetsComment matches the leading comment that selects presets.
// Only blanks may stand around the list: an empty comment selects nothing
// and must not reach the next line.
var enabledPresetsComment = regexp.MustCompile(`(?m)^#[ \t]*spectrocloud\.com/enabled-presets:[ \t]*(.*?)[ \t]*$`)

// unquotedMacro is a Palette macro action, which YAML would read as a
// flow mapping when it is not quoted.
var unquotedMacro = regexp.MustCompile(`\{\{-?[^{}]*\.spectro\.[^{}]*-?\}\}`)

// PresetRef names a preset within its group, written "Group:name".
type PresetRef struct {
	Group string `json:"group"`
	Name  string `json:"name"`
}

func (r PresetRef) String() string { return r.Group + ":" + r.Name }

// ParsePresetRef reads "Group:name".
func ParsePresetRef(s string) (PresetRef, error) {
	group, name, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || strings.TrimSpace(group) == "" || strings.TrimSpace(name) == "" {
		return PresetRef{}, fmt.Errorf("%q: want Group:preset-name", s)
	}
	return PresetRef{Group: strings.TrimSpace(group), Name: strings.TrimSpace(name)}, nil
}

// parseValues reads values.yaml: all values, the pack settings and the
// presets enabled by the leading comment.
func parseValues(file string, data []byte, ps *Problems) (map[string]any, Settings, []PresetRef) {
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		// Palette expands macros before it reads the values, so an unquoted
		// {{.spectro...}} is fine there: read such a file with the macros
		// standing in as strings (the resolver expands the text itself).
		values = nil
		stand := unquotedMacro.ReplaceAll(data, []byte("strata-macro"))
		if !unquotedMacro.Match(data) || yaml.Unmarshal(stand, &values) != nil {
			ps.errorf(file, "", "invalid YAML: %v", err)
			return nil, Settings{}, nil
		}
	}
	if values == nil {
		values = map[string]any{}
	}
	var refs []PresetRef
	if m := enabledPresetsComment.FindSubmatch(data); m != nil {
		for _, s := range strings.Split(string(m[1]), ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			ref, err := ParsePresetRef(s)
			if err != nil {
				ps.warnf(file, "# spectrocloud.com/enabled-presets", "%v; ignored", err)
				continue
			}
			refs = append(refs, ref)
		}
	}
	return values, parseSettings(file, values["pack"], ps), refs
}

func parseSettings(file string, raw any, ps *Problems) Settings {
	var s Settings
	if raw == nil {
		return s
	}
	sec, ok := raw.(map[string]any)
	if !ok {
		ps.errorf(file, "pack", "want a mapping, got %s", typeName(raw))
		return s
	}
	// An empty namespace (`namespace:` or "") leaves the choice to the
	// profile or the default, as Palette does.
	switch ns := sec["namespace"].(type) {
	case nil, string:
		s.Namespace, _ = ns.(string)
	default:
		ps.errorf(file, "pack.namespace", "want a namespace name, got %s", typeName(ns))
	}
	s.ReleaseNameOverride = stringMap(file, "pack.releaseNameOverride", sec["releaseNameOverride"], ps)
	s.NamespaceLabels = stringMap(file, "pack.namespaceLabels", sec["namespaceLabels"], ps)
	if p, ok := sec[installPriorityKey]; ok {
		switch v := p.(type) {
		case float64:
			s.InstallPriority = int(v)
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				ps.warnf(file, "pack."+installPriorityKey, "%q: want a whole number; the pack installs at priority 0", v)
			}
			s.InstallPriority = n
		case nil:
		default:
			ps.warnf(file, "pack."+installPriorityKey, "want a whole number, got %s; the pack installs at priority 0", typeName(p))
		}
	}
	if content, ok := sec["content"].(map[string]any); ok {
		images, _ := content["images"].([]any)
		for i, img := range images {
			entry, _ := img.(map[string]any)
			name, ok := entry["image"].(string)
			if !ok {
				ps.warnf(file, fmt.Sprintf("pack.content.images[%d]", i), "want {image: NAME}")
				continue
			}
			s.Images = append(s.Images, name)
		}
	}
	return s
}

// stringMap reads a mapping of names to strings; a number or a boolean is
// taken as written, anything else is left out with a warning.
func stringMap(file, field string, raw any, ps *Problems) map[string]string {
	if raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		ps.warnf(file, field, "want a mapping of strings, got %s; ignored", typeName(raw))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := scalarString(v)
		if !ok {
			ps.warnf(file, field+"."+k, "want a string, got %s; ignored", typeName(v))
			continue
		}
		out[k] = s
	}
	return out
}

// typeName describes a decoded YAML value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case float64, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// Preset is a named set of value changes a user can switch on, one per group.
type Preset struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName,omitempty"`
	Group       string   `json:"group"`
	Add         string   `json:"add,omitempty"`
	Remove      []string `json:"remove,omitempty"`
	// AddValues is Add parsed.
	AddValues map[string]any `json:"-"`
}

// Ref returns the preset's "Group:name".
func (p Preset) Ref() PresetRef { return PresetRef{Group: p.Group, Name: p.Name} }

// parsePresets reads presets.yaml. A preset that cannot be used is a
// warning: the pack deploys without it, and a layer that selects it gets
// the error.
func parsePresets(file string, data []byte, ps *Problems) []Preset {
	var doc struct {
		Presets []Preset `json:"presets"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		ps.warnf(file, "", "invalid YAML, so the pack offers no presets: %v", err)
		return nil
	}
	seen := map[PresetRef]bool{}
	var out []Preset
	for i := range doc.Presets {
		p := doc.Presets[i]
		field := fmt.Sprintf("presets[%d]", i)
		switch {
		case p.Name == "":
			ps.warnf(file, field+".name", "missing: want the preset name; the preset is ignored")
			continue
		case p.Group == "":
			ps.warnf(file, field+".group", "missing: want the group preset %q belongs to; the preset is ignored", p.Name)
			continue
		case seen[p.Ref()]:
			ps.warnf(file, field, "preset %s is defined twice; the first is used", p.Ref())
			continue
		}
		seen[p.Ref()] = true
		if strings.TrimSpace(p.Add) != "" {
			if err := yaml.Unmarshal([]byte(p.Add), &p.AddValues); err != nil {
				// Macros may make it YAML only once expanded; the resolver
				// expands and reports it if a layer uses the preset.
				p.AddValues = nil
				if !strings.Contains(p.Add, ".spectro.") {
					ps.warnf(file, field+".add", "invalid YAML: %v; a layer selecting preset %s fails", err, p.Ref())
				}
			}
		}
		out = append(out, p)
	}
	return out
}
