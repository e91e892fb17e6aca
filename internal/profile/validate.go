package profile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/health"
	"strata.dev/strata/internal/macro"
	"strata.dev/strata/internal/pack"
)

var (
	// strictSemver is Palette's profile version: major.minor.patch[-pre].
	strictSemver  = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)
	dnsLabel      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	variableName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	anyTemplateAt = regexp.MustCompile(`\{\{-?.*?-?\}\}`)
)

// infraOrder is the fixed order of an infrastructure stack.
var infraOrder = []v1.LayerKind{v1.LayerOS, v1.LayerK8s, v1.LayerCNI, v1.LayerCSI}

// Validate checks the rules a profile must follow on its own.
func Validate(p Profile) Findings {
	var fs Findings
	spec := p.Spec
	obj := ProfileObject(spec.Name, spec.Version)
	add := func(field, format string, args ...any) { fs.Add(p.Source, obj, field, format, args...) }

	if !dnsLabel.MatchString(spec.Name) {
		add("spec.name", "%q: want lower-case letters, digits and '-', e.g. web-apps", spec.Name)
	}
	if !strictSemver.MatchString(spec.Version) {
		add("spec.version", "%q: want a version major.minor.patch with an optional -pre-release, e.g. 1.2.0", spec.Version)
	}
	if want := spec.Name + "-" + spec.Version; p.Name != want {
		add("metadata.name", "%q: want %q (<spec.name>-<spec.version>), one object per profile version", p.Name, want)
	}
	switch spec.Type {
	case v1.ProfileInfra, v1.ProfileAddOn, v1.ProfileFull:
	default:
		add("spec.type", "%q: want infra, add-on or full", spec.Type)
	}
	if len(spec.Layers) == 0 {
		add("spec.layers", "empty: want at least one layer")
	}

	validateLayerOrder(spec, add)
	vars := validateVariables(spec.Variables, add)
	if spec.Rollout != nil {
		validateRollout(*spec.Rollout, spec.Layers, add)
	}

	names := map[string]int{}
	for i, l := range spec.Layers {
		field := fmt.Sprintf("spec.layers[%d]", i)
		if !dnsLabel.MatchString(l.Name) {
			add(field+".name", "%q: want lower-case letters, digits and '-'", l.Name)
		}
		if j, dup := names[l.Name]; dup {
			add(field+".name", "%q is also the name of spec.layers[%d]: layer names are unique", l.Name, j)
		}
		names[l.Name] = i
		if n := countSources(l); n != 1 {
			add(field, "has %d sources: want exactly one of pack, chart, manifests or zarf", n)
		}
		for j, ps := range l.Presets {
			if _, err := pack.ParsePresetRef(ps); err != nil {
				add(fmt.Sprintf("%s.presets[%d]", field, j), "%v", err)
			}
		}
		if l.Values != "" {
			checkValuesYAML(l.Values, field+".values", add)
			for _, ref := range macro.Find(l.Values) {
				if ref.Kind == macro.Var && !vars[ref.Name] {
					add(field+".values", "unresolvable macro %s: the profile defines no variable %q", ref, ref.Name)
				}
			}
		}
		for j, dep := range l.DependsOn {
			if dep == l.Name {
				add(fmt.Sprintf("%s.dependsOn[%d]", field, j), "a layer cannot depend on itself")
			}
		}
	}
	return fs
}

func validateLayerOrder(spec v1.ClusterProfileSpec, add func(string, string, ...any)) {
	kinds := make([]v1.LayerKind, len(spec.Layers))
	for i, l := range spec.Layers {
		kinds[i] = l.Kind
		if !slices.Contains([]v1.LayerKind{v1.LayerOS, v1.LayerKernel, v1.LayerK8s, v1.LayerCNI, v1.LayerCSI, v1.LayerAddon}, l.Kind) {
			add(fmt.Sprintf("spec.layers[%d].kind", i), "%q: want os, kernel, k8s, cni, csi or addon", l.Kind)
		}
	}
	switch spec.Type {
	case v1.ProfileAddOn:
		for i, k := range kinds {
			if k != v1.LayerAddon {
				add(fmt.Sprintf("spec.layers[%d].kind", i), "%q in an add-on profile: want addon only (infrastructure layers belong in an infra or full profile)", k)
			}
		}
	case v1.ProfileInfra, v1.ProfileFull:
		// An optional kernel layer follows the os layer.
		want := slices.Clone(infraOrder)
		if len(kinds) > 1 && kinds[1] == v1.LayerKernel {
			want = slices.Insert(want, 1, v1.LayerKernel)
		}
		for i, k := range want {
			if i >= len(kinds) {
				add("spec.layers", "%s profile has %d layers: want os, k8s, cni and csi first, missing %s", spec.Type, len(kinds), k)
				break
			}
			if kinds[i] != k {
				add(fmt.Sprintf("spec.layers[%d].kind", i), "%q: want %s (an %s profile starts with os, an optional kernel, k8s, cni, csi in that order)", kinds[i], k, spec.Type)
			}
		}
		for i := len(want); i < len(kinds); i++ {
			if spec.Type == v1.ProfileInfra {
				add(fmt.Sprintf("spec.layers[%d]", i), "an infra profile has exactly the os, k8s, cni and csi layers (and an optional kernel layer): move %q to an add-on profile or make the profile full", spec.Layers[i].Name)
			} else if kinds[i] != v1.LayerAddon {
				add(fmt.Sprintf("spec.layers[%d].kind", i), "%q after the infrastructure layers: want addon", kinds[i])
			}
		}
	}
}

// validateVariables checks variable definitions and returns their names.
func validateVariables(vars []v1.Variable, add func(string, string, ...any)) map[string]bool {
	names := map[string]bool{}
	for i, v := range vars {
		field := fmt.Sprintf("spec.variables[%d]", i)
		if !variableName.MatchString(v.Name) {
			add(field+".name", "%q: want letters, digits and _, not starting with a digit", v.Name)
		}
		if names[v.Name] {
			add(field+".name", "variable %q is defined twice", v.Name)
		}
		names[v.Name] = true
		switch v.Input {
		case "", v1.InputText:
		case v1.InputDropdown:
			if len(v.Options) == 0 {
				add(field+".options", "a dropdown variable needs options")
			}
		default:
			add(field+".input", "%q: want text or dropdown", v.Input)
		}
		if v.Regex != "" {
			if _, err := regexp.Compile(v.Regex); err != nil {
				add(field+".regex", "does not compile: %v", err)
				continue
			}
		}
		if err := checkFormat(v.Format, "x"); err != nil && strings.HasPrefix(err.Error(), "unknown format") {
			add(field+".format", "%v", err)
			continue
		}
		if v.Default != "" {
			if err := CheckVariableValue(v, v.Default); err != nil {
				add(field+".default", "%v", err)
			}
		}
		if v.Hidden && v.Required && v.Default == "" {
			add(field, "a hidden required variable needs a default: users are not asked for it")
		}
	}
	return names
}

// checkValuesYAML parses values with every template action replaced, since
// macros may stand where YAML expects a scalar (replicas: {{.spectro.var.n}}).
func checkValuesYAML(values, field string, add func(string, string, ...any)) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(anyTemplateAt.ReplaceAllString(values, "x")), &m); err != nil {
		add(field, "invalid YAML: %v", err)
	}
}

func countSources(l v1.Layer) int {
	n := 0
	for _, set := range []bool{l.Pack != nil, l.Chart != nil, l.Manifests != nil, l.Zarf != nil} {
		if set {
			n++
		}
	}
	return n
}

// validateRollout checks what the API server's schema cannot: selectors
// that mean something, wave names once each, a wave after one that takes
// every cluster left (it would stay empty).
func validateRollout(r v1.RolloutPolicy, layers []v1.Layer, add func(field, format string, args ...any)) {
	seen := map[string]int{}
	catchAll := -1
	for i, w := range r.Waves {
		field := fmt.Sprintf("spec.rollout.waves[%d]", i)
		if j, dup := seen[w.Name]; dup {
			add(field+".name", "%q is also the name of spec.rollout.waves[%d]: wave names are unique", w.Name, j)
		}
		seen[w.Name] = i
		if w.Name == v1.RestWave && i != len(r.Waves)-1 {
			add(field+".name", "%q names the last wave, of the clusters no wave takes: make it the last wave or choose another name", w.Name)
		}
		if catchAll >= 0 {
			add(field, "comes after spec.rollout.waves[%d], which has no selector and takes every cluster left: this wave stays empty", catchAll)
		}
		if w.Soak != nil && w.Soak.Duration < 0 {
			add(field+".soak", "%s: want a duration of zero or more, e.g. 2m", w.Soak.Duration)
		}
		if w.Selector == nil {
			catchAll = i
		} else if _, err := metav1.LabelSelectorAsSelector(w.Selector); err != nil {
			add(field+".selector", "%v", err)
		}
	}
	checks := map[string]int{}
	for i, hc := range r.HealthChecks {
		field := fmt.Sprintf("spec.rollout.healthChecks[%d]", i)
		if j, dup := checks[hc.Name]; dup {
			add(field+".name", "%q is also the name of spec.rollout.healthChecks[%d]: check names are unique", hc.Name, j)
		}
		checks[hc.Name] = i
		if hc.Layer != "" && !slices.ContainsFunc(layers, func(l v1.Layer) bool { return l.Name == hc.Layer }) {
			add(field+".layer", "%q: want the name of a layer of this profile", hc.Layer)
		}
		if hc.Object.APIVersion == "" || hc.Object.Kind == "" || hc.Object.Name == "" {
			add(field+".object", "want apiVersion, kind and name (and namespace for a namespaced object)")
		}
		if hc.Condition != "" {
			if _, err := health.Compile(hc.Condition); err != nil {
				add(field+".condition", "%q does not compile: %v", hc.Condition, err)
			}
		}
	}
	if r.ProgressDeadline != nil && r.ProgressDeadline.Duration <= 0 {
		add("spec.rollout.progressDeadline", "%s: want a positive duration, e.g. 5m", r.ProgressDeadline.Duration)
	}
	if r.MaxFailures != nil && *r.MaxFailures < 0 {
		add("spec.rollout.maxFailures", "%d: want 0 or more", *r.MaxFailures)
	}
	switch r.OnFailure {
	case "", v1.RolloutRollback, v1.RolloutHalt:
	default:
		add("spec.rollout.onFailure", "%q: want Rollback or Halt", r.OnFailure)
	}
}
