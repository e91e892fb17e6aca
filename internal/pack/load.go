package pack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// Files of a Palette pack.
const (
	MetadataFile = "pack.json"
	ValuesFile   = "values.yaml"
	PresetsFile  = "presets.yaml"
	SchemaFile   = "schema.yaml"
	chartFile    = "Chart.yaml"
)

// Load reads the pack at path: a Palette pack folder, a Helm chart folder
// or a chart archive. It returns the pack (nil when nothing usable was
// found) and every problem seen; problems.Err() is nil when the pack is usable.
func Load(path string) (*Pack, Problems) {
	p, ps := load(path)
	if p != nil {
		p.Warnings = ps.Warnings()
	}
	return p, ps
}

func load(path string) (*Pack, Problems) {
	var ps Problems
	st, err := os.Stat(path)
	if err != nil {
		ps.errorf(path, "", "cannot read: %v", err)
		return nil, ps
	}
	switch {
	case !st.IsDir() && isChartArchive(path):
		return loadPlainChart(path, &ps), ps
	case !st.IsDir():
		ps.errorf(path, "", "not a pack: want a pack folder (with %s), a Helm chart folder or a .tgz chart", MetadataFile)
		return nil, ps
	case exists(filepath.Join(path, MetadataFile)):
		return loadPalettePack(path, &ps), ps
	case exists(filepath.Join(path, chartFile)):
		return loadPlainChart(path, &ps), ps
	default:
		ps.errorf(path, "", "not a pack: no %s and no %s", MetadataFile, chartFile)
		return nil, ps
	}
}

// IsPack reports whether path looks like a pack Load can read.
func IsPack(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if !st.IsDir() {
		return isChartArchive(path)
	}
	return exists(filepath.Join(path, MetadataFile)) || exists(filepath.Join(path, chartFile))
}

// Discover returns path itself when it is a pack, otherwise the packs
// directly inside it, sorted.
func Discover(path string) ([]string, error) {
	if IsPack(path) {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		if IsPack(p) || (e.IsDir() && !strings.HasPrefix(e.Name(), ".")) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no packs found: want a pack folder or a folder of packs", path)
	}
	return out, nil
}

func loadPalettePack(dir string, ps *Problems) *Pack {
	p := &Pack{Path: dir}
	metaFile := filepath.Join(dir, MetadataFile)
	data, err := os.ReadFile(metaFile)
	if err != nil {
		ps.errorf(metaFile, "", "cannot read: %v", err)
		return nil
	}
	meta, ok := parseMetadata(metaFile, data, ps)
	if !ok {
		return nil
	}
	p.Metadata = meta

	valuesFile := filepath.Join(dir, ValuesFile)
	if data, err := os.ReadFile(valuesFile); err == nil {
		p.ValuesYAML = data
		p.Values, p.Settings, p.EnabledPresets = parseValues(valuesFile, data, ps)
	} else if errors.Is(err, fs.ErrNotExist) {
		ps.warnf(valuesFile, "", "missing: the pack has no default values")
		p.Values = map[string]any{}
	} else {
		ps.errorf(valuesFile, "", "cannot read: %v", err)
	}

	presetsFile := filepath.Join(dir, PresetsFile)
	if data, err := os.ReadFile(presetsFile); err == nil {
		p.Presets = parsePresets(presetsFile, data, ps)
	}
	// A preset the pack does not define (a comment copied from another
	// pack) selects nothing, as in Palette.
	enabled := p.EnabledPresets[:0]
	for _, ref := range p.EnabledPresets {
		if _, ok := p.Preset(ref); !ok {
			ps.warnf(valuesFile, "# spectrocloud.com/enabled-presets", "unknown preset %s: %s defines %s; ignored", ref, PresetsFile, presetList(p.Presets))
			continue
		}
		enabled = append(enabled, ref)
	}
	p.EnabledPresets = enabled

	schemaFile := filepath.Join(dir, SchemaFile)
	if data, err := os.ReadFile(schemaFile); err == nil {
		p.Schema = parseSchema(schemaFile, data, ps)
	}

	for i, rel := range meta.Charts {
		field := fmt.Sprintf("charts[%d]", i)
		c, err := loadChart(filepath.Join(dir, rel))
		if err != nil {
			ps.errorf(metaFile, field, "chart %q: %v", rel, err)
			continue
		}
		c.Path = rel
		p.Charts = append(p.Charts, c)
	}
	for i, rel := range meta.KubeManifests {
		field := fmt.Sprintf("kubeManifests[%d]", i)
		m, err := loadManifest(filepath.Join(dir, rel))
		if err != nil {
			ps.errorf(metaFile, field, "manifest %q: %v", rel, err)
			continue
		}
		m.Path = rel
		p.Manifests = append(p.Manifests, m)
	}
	if len(meta.Charts) == 0 && len(meta.KubeManifests) == 0 && meta.Layer == LayerAddon {
		ps.warnf(metaFile, "", "the pack has neither charts nor kubeManifests: its layer installs nothing")
	}
	checkChartValues(p, valuesFile, ps)
	return p
}

// checkChartValues warns when a chart's values are not where Palette's
// format puts them.
func checkChartValues(p *Pack, valuesFile string, ps *Problems) {
	charts, _ := p.Values["charts"].(map[string]any)
	for _, c := range p.Charts {
		if _, ok := charts[c.Name]; !ok && charts != nil {
			ps.warnf(valuesFile, "charts", "no charts.%s section: the values under charts: are given to chart %s as they are", c.Name, c.Name)
		}
	}
}

func loadChart(path string) (Chart, error) {
	if !exists(path) {
		return Chart{}, fmt.Errorf("listed in %s but absent from the pack", MetadataFile)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return Chart{}, fmt.Errorf("not a valid Helm chart: %w", err)
	}
	return Chart{Name: ch.Metadata.Name, Version: ch.Metadata.Version, Chart: ch}, nil
}

func loadManifest(path string) (Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Manifest{}, fmt.Errorf("listed in %s but absent from the pack", MetadataFile)
		}
		return Manifest{}, err
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if _, err := parseManifestTemplate(name, string(data)); err != nil {
		return Manifest{}, fmt.Errorf("invalid template: %w", err)
	}
	return Manifest{Name: name, Template: data}, nil
}

// parseManifestTemplate parses a kubeManifest with the functions Helm
// templates have, so that a syntax error is found at lint time.
func parseManifestTemplate(name, text string) (*template.Template, error) {
	funcs := sprig.TxtFuncMap()
	// The functions Helm's engine adds to sprig's (helm.sh/helm/v4/pkg/engine
	// funcMap); a template using one must not fail to parse here.
	for _, f := range []string{"include", "tpl", "required", "lookup",
		"toYaml", "mustToYaml", "toYamlPretty", "fromYaml", "fromYamlArray",
		"toJson", "mustToJson", "fromJson", "fromJsonArray", "toToml", "mustToToml", "fromToml",
		"mustToDuration", "durationSeconds", "durationMilliseconds", "durationMicroseconds", "durationNanoseconds",
		"durationMinutes", "durationHours", "durationDays", "durationWeeks", "durationRoundTo", "durationTruncateTo"} {
		funcs[f] = func(...any) (string, error) { return "", nil }
	}
	return template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(text)
}

// loadPlainChart reads a Helm chart (folder or archive) as an add-on pack
// whose values are the chart's under charts.<name>.
func loadPlainChart(path string, ps *Problems) *Pack {
	ch, err := loader.Load(path)
	if err != nil {
		ps.errorf(path, "", "not a valid Helm chart: %v", err)
		return nil
	}
	values := map[string]any{"charts": map[string]any{ch.Metadata.Name: ch.Values}}
	return &Pack{
		Path: path,
		Metadata: Metadata{
			Name: ch.Metadata.Name, DisplayName: ch.Metadata.Name, Version: ch.Metadata.Version,
			Layer: LayerAddon, Charts: []string{filepath.Base(path)},
		},
		Values:     values,
		Charts:     []Chart{{Name: ch.Metadata.Name, Version: ch.Metadata.Version, Path: filepath.Base(path), Chart: ch}},
		PlainChart: true,
	}
}

func presetList(presets []Preset) string {
	if len(presets) == 0 {
		return "no presets"
	}
	refs := make([]string, len(presets))
	for i, p := range presets {
		refs[i] = p.Ref().String()
	}
	return strings.Join(refs, ", ")
}

func isChartArchive(path string) bool {
	return strings.HasSuffix(path, ".tgz") || strings.HasSuffix(path, ".tar.gz")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
