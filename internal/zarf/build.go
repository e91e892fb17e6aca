package zarf

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"sigs.k8s.io/yaml"

	v1 "strata.dev/strata/api/v1alpha1"
	vals "strata.dev/strata/internal/values"
)

// BuildOptions say which components to deploy and with what.
type BuildOptions struct {
	// Components chosen besides the required and default ones.
	Components []string
	// Variables set by the layer, by name; the rest take their defaults.
	Variables map[string]string
	// Constants fill a definition folder's package templates
	// (###ZARF_PKG_TMPL_X###), which `zarf package create` would fill.
	Constants map[string]string
	// FetchChart fetches a chart a component names by URL.
	FetchChart func(*v1.ChartSource) (*chartv2.Chart, error)
	// RenderChart renders a chart as release name in namespace ns.
	RenderChart func(ch *chartv2.Chart, values map[string]any, name, ns string) (string, error)
}

// Document is one manifest file to apply.
type Document struct {
	// Name says where it came from: component/manifest/file or component/chart.
	Name string
	YAML string
}

// Result is what the selected components deploy.
type Result struct {
	Components []string
	Documents  []Document
	// Images the deployed components run, as zarf.yaml lists them.
	Images []string
	// Failed holds the components that cannot deploy, and why; the others
	// still do.
	Failed map[string]error
}

// Err summarises the failed components, nil when none failed.
func (r *Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	names := make([]string, 0, len(r.Failed))
	for n := range r.Failed {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		errs = append(errs, fmt.Errorf("component %s: %w", n, r.Failed[n]))
	}
	return errors.Join(errs...)
}

var placeholder = regexp.MustCompile(`###ZARF_(VAR|CONST)_([A-Z0-9_]+)###`)

// Build selects components and produces their manifests with variables and
// constants substituted. Input errors (unknown component or variable, a
// value breaking its pattern) fail the whole build; a component whose
// content cannot be had (a remote chart out of reach) fails alone.
func Build(s *Source, opts BuildOptions) (*Result, error) {
	selected, err := s.selectComponents(opts.Components)
	if err != nil {
		return nil, err
	}
	subst, secrets, err := s.substitutions(opts)
	if err != nil {
		return nil, err
	}
	res := &Result{Failed: map[string]error{}}
	for _, c := range selected {
		docs, err := s.componentDocuments(c, opts, subst)
		if err != nil {
			res.Failed[c.Name] = hideSecrets(err, secrets)
			continue
		}
		res.Components = append(res.Components, c.Name)
		res.Documents = append(res.Documents, docs...)
		res.Images = append(res.Images, c.Images...)
	}
	return res, nil
}

func (s *Source) selectComponents(chosen []string) ([]Component, error) {
	var out []Component
	for _, name := range chosen {
		if !slices.ContainsFunc(s.Package.Components, func(c Component) bool { return c.Name == name }) {
			var names []string
			for _, c := range s.Package.Components {
				names = append(names, c.Name)
			}
			return nil, fmt.Errorf("zarf package %s has no component %q: it has %s", s.Package.Metadata.Name, name, strings.Join(names, ", "))
		}
	}
	for _, c := range s.Package.Components {
		if c.IsRequired() || c.Default || slices.Contains(chosen, c.Name) {
			out = append(out, c)
		}
	}
	return out, nil
}

// substitutions maps each placeholder to its value, and lists the values
// of sensitive variables so no message shows them.
func (s *Source) substitutions(opts BuildOptions) (map[string]substitution, []string, error) {
	out := map[string]substitution{}
	var secrets []string
	for name := range opts.Variables {
		if !slices.ContainsFunc(s.Package.Variables, func(v Variable) bool { return v.Name == name }) {
			return nil, nil, fmt.Errorf("zarf package %s defines no variable %q", s.Package.Metadata.Name, name)
		}
	}
	for _, v := range s.Package.Variables {
		value, set := opts.Variables[v.Name]
		if !set {
			value = v.Default
		}
		if v.Type == "file" && value != "" {
			if s.Built {
				return nil, nil, fmt.Errorf("variable %s: file variables of built packages are not supported", v.Name)
			}
			data, err := s.readDefinitionFile(s.fileSource(value))
			if err != nil {
				return nil, nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			value = string(data)
		}
		if value == "" && (v.Prompt || v.Pattern != "") && v.Default == "" {
			return nil, nil, fmt.Errorf("variable %s has no value: set it in the layer's values as variables.%s", v.Name, v.Name)
		}
		if err := matchPattern(v.Pattern, value); err != nil {
			shown := fmt.Sprintf("%q", value)
			if v.Sensitive {
				shown = "its sensitive value"
			}
			return nil, nil, fmt.Errorf("variable %s: %s %v", v.Name, shown, err)
		}
		if v.Sensitive && value != "" {
			secrets = append(secrets, value)
		}
		out["###ZARF_VAR_"+v.Name+"###"] = substitution{value: value, autoIndent: v.AutoIndent}
	}
	for _, c := range s.Package.Constants {
		value := c.Value
		if v, ok := opts.Constants[c.Name]; ok {
			value = v
		}
		if strings.Contains(value, "###ZARF_PKG_TMPL_") {
			return nil, nil, fmt.Errorf("constant %s is %s, a package template that `zarf package create` fills: set it with the layer value constants.%s", c.Name, value, c.Name)
		}
		if err := matchPattern(c.Pattern, value); err != nil {
			return nil, nil, fmt.Errorf("constant %s: %q %v", c.Name, value, err)
		}
		out["###ZARF_CONST_"+c.Name+"###"] = substitution{value: value, autoIndent: c.AutoIndent}
	}
	return out, secrets, nil
}

// fileSource maps a file a component places on the host (its target) back
// to the package file it comes from, so file variables naming the target
// read the content Zarf would have put there.
func (s *Source) fileSource(name string) string {
	for _, c := range s.Package.Components {
		for _, f := range c.Files {
			if f.Target == name {
				return f.Source
			}
		}
	}
	return name
}

type substitution struct {
	value      string
	autoIndent bool
}

func matchPattern(pattern, value string) error {
	if pattern == "" {
		return nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("cannot be checked: pattern %q does not compile: %v", pattern, err)
	}
	if !re.MatchString(value) {
		return fmt.Errorf("does not match pattern %q", pattern)
	}
	return nil
}

// substitute replaces placeholders; with autoIndent, every line after the
// first of a multi-line value is indented like the placeholder.
func substitute(text string, subst map[string]substitution) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if !strings.Contains(line, "###ZARF_") {
			continue
		}
		lines[i] = placeholder.ReplaceAllStringFunc(line, func(ph string) string {
			s, ok := subst[ph]
			if !ok {
				return ph // set by actions Strata does not run
			}
			value := strings.TrimSuffix(s.value, "\n")
			if s.autoIndent && strings.Contains(value, "\n") {
				col := strings.Index(line, ph)
				value = strings.ReplaceAll(value, "\n", "\n"+strings.Repeat(" ", col))
			}
			return value
		})
	}
	return strings.Join(lines, "\n")
}

func hideSecrets(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "(sensitive)")
	}
	return errors.New(msg)
}

func (s *Source) componentDocuments(c Component, opts BuildOptions, subst map[string]substitution) ([]Document, error) {
	var files map[string][]byte
	if s.Built {
		var err error
		if files, err = s.componentFiles(c.Name); err != nil {
			return nil, fmt.Errorf("components/%s.tar: %w", c.Name, err)
		}
	}
	var docs []Document
	for _, m := range c.Manifests {
		if m.Template {
			return nil, fmt.Errorf("manifest %s asks for Zarf values templating (template: true), which Strata does not support yet", m.Name)
		}
		var texts []Document
		if s.Built {
			prefix := c.Name + "/manifests/" + m.Name + "-"
			for _, name := range slices.Sorted(maps.Keys(files)) {
				if strings.HasPrefix(name, prefix) {
					texts = append(texts, Document{Name: name, YAML: string(files[name])})
				}
			}
			if len(texts) == 0 && len(m.Files) > 0 {
				return nil, fmt.Errorf("manifest %s: no files under %s in components/%s.tar", m.Name, prefix, c.Name)
			}
		} else {
			for _, f := range m.Files {
				data, err := s.readDefinitionFile(f)
				if err != nil {
					return nil, fmt.Errorf("manifest %s: %w", m.Name, err)
				}
				texts = append(texts, Document{Name: c.Name + "/" + m.Name + "/" + path.Base(f), YAML: string(data)})
			}
		}
		for _, t := range texts {
			y, err := withNamespace(substitute(t.YAML, subst), m.Namespace)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.Name, err)
			}
			docs = append(docs, Document{Name: t.Name, YAML: y})
		}
	}
	for _, ch := range c.Charts {
		d, err := s.chartDocument(c, ch, files, opts, subst)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", ch.Name, err)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

func (s *Source) chartDocument(c Component, ch Chart, files map[string][]byte, opts BuildOptions, subst map[string]substitution) (Document, error) {
	var chart *chartv2.Chart
	var err error
	switch {
	case s.Built:
		prefix := c.Name + "/charts/" + ch.Name + "-"
		for _, name := range slices.Sorted(maps.Keys(files)) {
			if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".tgz") {
				chart, err = loader.LoadArchive(strings.NewReader(string(files[name])))
				break
			}
		}
		if chart == nil && err == nil {
			return Document{}, fmt.Errorf("no %s*.tgz in components/%s.tar", prefix, c.Name)
		}
	case ch.LocalPath != "":
		if _, err := s.readDefinitionFile(path.Join(ch.LocalPath, "Chart.yaml")); err != nil {
			return Document{}, err
		}
		chart, err = loader.Load(path.Join(s.Path, ch.LocalPath))
	case strings.HasSuffix(ch.URL, ".git") || ch.GitPath != "":
		return Document{}, fmt.Errorf("charts from git repositories (%s) are not supported; use a Helm repository or OCI registry", ch.URL)
	case ch.URL != "" && opts.FetchChart != nil:
		name := ch.RepoName
		if name == "" && !strings.HasPrefix(ch.URL, "oci://") {
			name = ch.Name
		}
		chart, err = opts.FetchChart(&v1.ChartSource{Repository: ch.URL, Name: name, Version: ch.Version})
	default:
		return Document{}, fmt.Errorf("no source: want localPath or url")
	}
	if err != nil {
		return Document{}, err
	}
	values := map[string]any{}
	for i, vf := range ch.ValuesFiles {
		var data []byte
		if s.Built {
			data = files[fmt.Sprintf("%s/values/%s-%d", c.Name, ch.Name, i)]
		} else if data, err = s.readDefinitionFile(vf); err != nil {
			return Document{}, err
		}
		var v map[string]any
		if err := yaml.Unmarshal([]byte(substitute(string(data), subst)), &v); err != nil {
			return Document{}, fmt.Errorf("values file %s: %w", vf, err)
		}
		values = vals.Merge(values, v)
	}
	release := ch.ReleaseName
	if release == "" {
		release = ch.Name
	}
	ns := ch.Namespace
	if ns == "" {
		ns = "default"
	}
	manifest, err := opts.RenderChart(chart, values, release, ns)
	if err != nil {
		return Document{}, err
	}
	y, err := withNamespace(manifest, ns)
	if err != nil {
		return Document{}, err
	}
	return Document{Name: c.Name + "/" + ch.Name, YAML: y}, nil
}

// withNamespace sets a namespace on every namespaced document that names
// none, as Zarf does for a manifest's or chart's namespace.
func withNamespace(text, ns string) (string, error) {
	if ns == "" {
		return text, nil
	}
	var out []string
	for _, doc := range strings.Split(text, "\n---") {
		doc = strings.TrimPrefix(doc, "\n")
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return "", err
		}
		if m == nil {
			continue
		}
		meta, _ := m["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			m["metadata"] = meta
		}
		if _, set := meta["namespace"]; !set && !clusterScoped[fmt.Sprint(m["kind"])] {
			meta["namespace"] = ns
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			return "", err
		}
		out = append(out, string(b))
	}
	return strings.Join(out, "---\n"), nil
}

// clusterScoped lists the kinds that take no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
	"StorageClass": true, "PersistentVolume": true, "PriorityClass": true, "APIService": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true, "IngressClass": true,
	"RuntimeClass": true, "CSIDriver": true, "Node": true,
}
