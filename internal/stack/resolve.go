package stack

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	"sigs.k8s.io/yaml"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/macro"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	vals "strata.dev/strata/internal/values"
)

// Packs finds packs by name and version; *pack.Catalog is one.
type Packs interface {
	Pack(name, version string) (*pack.Pack, error)
}

// RegistryPacks also finds a pack in one named registry, for a layer whose
// pack names its registry (pack.registry).
type RegistryPacks interface {
	Packs
	PackFrom(registry, name, version string) (*pack.Pack, error)
}

// Facts are what is known about the target cluster beyond its profiles.
// Offline, nothing is; a deploy knows the live cluster.
type Facts struct {
	// KubernetesVersion of the running cluster, e.g. "1.37.2". The k8s
	// layer's version wins when the stack has one.
	KubernetesVersion string
	// Existing is true for the target of a one-shot deploy: a cluster that
	// runs already, whatever its document says. Without it, a cluster needs
	// an infra or full profile only when Strata makes it exist (provider
	// local or capi); an imported cluster brings its own infrastructure.
	Existing bool
	// Drafts lets a cluster's attachment name a draft version exactly: a
	// preview of what the draft would do to it.
	Drafts bool
}

// needsInfra reports whether a cluster must attach exactly one infra or
// full profile. The manager and the offline commands both ask here, so
// they accept and refuse the same clusters.
func needsInfra(c profile.Cluster, facts Facts) bool {
	return !facts.Existing && (c.Spec.Provider == v1.ProviderLocal || c.Spec.Provider == v1.ProviderCAPI)
}

// ResolveStack resolves a cluster: its attached profiles (found among
// profiles by name and version) and the packs they use, into the stack it
// must run. Every broken rule is reported at once, each naming file, object,
// field and what was expected; no partial stack is returned with an error.
func ResolveStack(profiles []profile.Profile, cluster profile.Cluster, packs Packs, facts Facts) (*Stack, error) {
	r := newResolver(cluster, packs)
	r.k8sVers = strings.TrimPrefix(facts.KubernetesVersion, "v")
	r.drafts = facts.Drafts
	r.attach(profiles, needsInfra(cluster, facts))
	return r.resolve()
}

// ResolveProfile previews one profile on its own, as if a cluster named
// after it used it with every variable at its default. Add-on profiles need
// no infrastructure profile here.
func ResolveProfile(p profile.Profile, packs Packs, facts Facts) (*Stack, error) {
	c := profile.Cluster{
		Cluster: &v1.Cluster{Spec: v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: p.Spec.Name, Version: p.Spec.Version}}}},
		Source:  p.Source,
	}
	c.Name = p.Spec.Name
	r := newResolver(c, packs)
	r.k8sVers = strings.TrimPrefix(facts.KubernetesVersion, "v")
	r.preview, r.drafts = true, true // a profile's own check: drafts too
	r.attach([]profile.Profile{p}, false)
	return r.resolve()
}

type attachment struct {
	profile profile.Profile
	vars    map[string]string
}

type layerState struct {
	att   *attachment
	index int
	spec  v1.Layer
	out   Layer
	// state: 0 not yet resolved, 1 resolving (to catch reference cycles), 2 done.
	state int
	ok    bool
	// written and answers serve {{.spectro.pack}} references to the layer
	// while it resolves: its values as written, and each path's answer,
	// computed once (without them, values naming others twice expand
	// exponentially).
	written map[string]any
	answers map[string]answer
}

type answer struct {
	value any
	err   error
}

type resolver struct {
	cluster    profile.Cluster
	clusterObj string
	packs      Packs
	preview    bool
	drafts     bool
	fs         profile.Findings
	// ws are warnings: worth a look, never blocking.
	ws     profile.Findings
	atts   []*attachment
	layers []*layerState
	byName map[string]*layerState
	byPack map[string]*layerState
	// masked maps a placeholder standing for a masked value to the value.
	masked  map[string]string
	k8sVers string
	// following holds the pack values being expanded while their layer is
	// still resolving, to tell a self-reference from a cycle.
	following map[string]bool
}

func newResolver(c profile.Cluster, packs Packs) *resolver {
	return &resolver{
		cluster: c, clusterObj: profile.ClusterObject(c.Name), packs: packs,
		byName: map[string]*layerState{}, byPack: map[string]*layerState{}, masked: map[string]string{},
	}
}

func (r *resolver) clusterFinding(field, format string, args ...any) {
	r.fs.Add(r.cluster.Source, r.clusterObj, field, format, args...)
}

func (r *resolver) clusterWarning(field, format string, args ...any) {
	r.ws.Add(r.cluster.Source, r.clusterObj, field, format, args...)
}

// attach finds each attached profile, validates it and sets its variables.
func (r *resolver) attach(profiles []profile.Profile, requireInfra bool) {
	var infra []*attachment
	var addons []*attachment
	for i, a := range r.cluster.Spec.Profiles {
		field := fmt.Sprintf("spec.profiles[%d]", i)
		p, ok := FindProfile(profiles, a.Name, a.Version)
		if !ok {
			r.clusterFinding(field, "profile %q: no version %s found%s", a.Name, a.Version, versionsOf(profiles, a.Name))
			continue
		}
		if p.Spec.Draft && !r.drafts {
			r.clusterFinding(field, "version %s of %s is a draft: it runs nowhere until it is published (strata profile publish %s %s)", p.Spec.Version, p.Spec.Name, p.Spec.Name, p.Spec.Version)
			continue
		}
		r.fs = append(r.fs, profile.Validate(p)...)
		att := &attachment{profile: p, vars: r.variables(p, a, field)}
		if p.Spec.Type == v1.ProfileAddOn {
			addons = append(addons, att)
		} else {
			infra = append(infra, att)
		}
	}
	if (requireInfra && len(infra) != 1) || len(infra) > 1 {
		names := make([]string, len(infra))
		for i, a := range infra {
			names[i] = a.profile.Spec.Name
		}
		r.clusterFinding("spec.profiles", "has %d infra or full profiles %v: want exactly one", len(infra), names)
	}
	r.atts = append(infra, addons...)
}

// variables returns the values of a profile's variables for this cluster.
// Masked values are replaced by placeholders until the very end, so that
// the paths they land on are known and no message can show them.
func (r *resolver) variables(p profile.Profile, a v1.ProfileAttachment, field string) map[string]string {
	given := map[string]string{}
	for j, vv := range a.Variables {
		if !slices.ContainsFunc(p.Spec.Variables, func(v v1.Variable) bool { return v.Name == vv.Name }) {
			r.clusterFinding(fmt.Sprintf("%s.variables[%d].name", field, j), "profile %q defines no variable %q", p.Spec.Name, vv.Name)
			continue
		}
		given[vv.Name] = vv.Value
	}
	out := map[string]string{}
	for _, v := range p.Spec.Variables {
		value, set := given[v.Name]
		if !set {
			value = v.Default
		}
		vfield := fmt.Sprintf("%s.variables[name=%s]", field, v.Name)
		if set && v.ReadOnly && value != v.Default {
			r.clusterFinding(vfield, "variable %q of profile %q is read-only: want its default", v.Name, p.Spec.Name)
		}
		if err := profile.CheckVariableValue(v, value); err != nil {
			r.clusterFinding(vfield, "variable %q of profile %q: %v", v.Name, p.Spec.Name, err)
		}
		if v.Masked && value != "" {
			placeholder := fmt.Sprintf("strata-masked-%d-7c1e", len(r.masked))
			r.masked[placeholder] = value
			value = placeholder
		}
		out[v.Name] = value
	}
	return out
}

func (r *resolver) resolve() (*Stack, error) {
	r.collectLayers()
	r.checkOverrides()
	r.checkCAPI()
	for _, ls := range r.layers {
		r.resolveLayer(ls)
	}
	r.checkDependencies()
	r.checkResources()
	ordered := r.order()
	if err := r.fs.Err(); err != nil {
		return nil, err
	}
	st := &Stack{Cluster: r.cluster.Name, KubernetesVersion: r.k8sVers, Warnings: r.packWarnings()}
	st.Warnings = append(st.Warnings, r.ws...)
	for _, att := range r.atts {
		st.Profiles = append(st.Profiles, ProfileVersion{Name: att.profile.Spec.Name, Version: att.profile.Spec.Version})
	}
	for _, ls := range ordered {
		st.Layers = append(st.Layers, ls.out)
	}
	return st, nil
}

// packWarnings are the load warnings of the packs the stack uses, once each.
func (r *resolver) packWarnings() profile.Findings {
	var ws profile.Findings
	seen := map[*pack.Pack]bool{}
	for _, ls := range r.layers {
		p := ls.out.Pack
		if p == nil || seen[p] {
			continue
		}
		seen[p] = true
		for _, w := range p.Warnings {
			ws.Add(profile.Source{File: w.File}, p.String(), w.Field, "%s", w.Message)
		}
	}
	return ws
}

func (r *resolver) collectLayers() {
	for _, att := range r.atts {
		for i, l := range att.profile.Spec.Layers {
			ls := &layerState{att: att, index: i, spec: l}
			if prev, dup := r.byName[l.Name]; dup {
				if prev.att != att {
					r.clusterFinding("spec.profiles", "layer %q is in profile %q and in profile %q: layer names are unique across a cluster's profiles", l.Name, prev.att.profile.Spec.Name, att.profile.Spec.Name)
				}
				continue
			}
			r.byName[l.Name] = ls
			r.layers = append(r.layers, ls)
			if l.Pack != nil {
				if _, seen := r.byPack[l.Pack.Name]; !seen {
					r.byPack[l.Pack.Name] = ls
				}
			}
			if l.Kind == v1.LayerK8s {
				r.k8sVers = layerVersion(l)
			}
		}
	}
}

// checkCAPI checks offline what a capi cluster needs before Cluster API is
// asked: a ClusterClass named, a worker class for each pool, a k8s layer
// whose version the topology takes. The class itself is checked online.
func (r *resolver) checkCAPI() {
	if r.cluster.Spec.Provider != v1.ProviderCAPI || r.preview {
		return
	}
	if r.cluster.Spec.CAPI == nil || r.cluster.Spec.CAPI.ClassRef.Name == "" {
		r.clusterFinding("spec.capi.classRef.name", "provider capi needs the ClusterClass Cluster API makes the cluster from")
	}
	for i, p := range r.cluster.Spec.NodePools {
		if p.Class == "" {
			r.clusterFinding(fmt.Sprintf("spec.nodePools[%d].class", i), "pool %q of a capi cluster needs a worker class of its ClusterClass", p.Name)
		}
	}
	hasK8s := false
	for _, ls := range r.layers {
		hasK8s = hasK8s || ls.spec.Kind == v1.LayerK8s
	}
	if !hasK8s && len(r.atts) > 0 {
		r.clusterFinding("spec.profiles", "provider capi needs an infra or full profile with a k8s layer: its pack version is the Kubernetes version Cluster API runs")
	}
}

func (r *resolver) checkOverrides() {
	for j, o := range r.cluster.Spec.Overrides {
		if _, ok := r.byName[o.Layer]; !ok {
			r.clusterFinding(fmt.Sprintf("spec.overrides[%d].layer", j), "no layer %q in the cluster's profiles: want one of %s", o.Layer, strings.Join(r.layerNames(), ", "))
		}
	}
}

func (r *resolver) layerNames() []string {
	names := make([]string, len(r.layers))
	for i, ls := range r.layers {
		names[i] = ls.spec.Name
	}
	return names
}

// system returns the system macros a layer of this profile sees.
func (r *resolver) system(att *attachment) map[string]string {
	uid := string(r.cluster.UID)
	if uid == "" {
		// Offline there is no server-assigned UID; a stable one keeps output
		// deterministic and still distinguishes clusters.
		uid = "offline-" + r.cluster.Namespace + "-" + r.cluster.Name
	}
	ns := r.cluster.Namespace
	if ns == "" {
		ns = "default"
	}
	return map[string]string{
		"cluster.name":           r.cluster.Name,
		"cluster.uid":            uid,
		"cluster.namespace":      ns,
		"project.name":           ns,
		"kubernetes.version":     strings.TrimPrefix(r.k8sVers, "v"),
		"clusterprofile.name":    att.profile.Spec.Name,
		"clusterprofile.version": att.profile.Spec.Version,
	}
}

func (r *resolver) layerField(ls *layerState, field string) string {
	return fmt.Sprintf("spec.layers[%d]%s", ls.index, field)
}

func (r *resolver) layerFinding(ls *layerState, field, format string, args ...any) {
	p := ls.att.profile
	r.fs.Add(p.Source, profile.ProfileObject(p.Spec.Name, p.Spec.Version), r.layerField(ls, field), format, args...)
}

// resolveLayer computes a layer's final values and install settings.
func (r *resolver) resolveLayer(ls *layerState) {
	if ls.state != 0 {
		return
	}
	ls.state = 1
	defer func() { ls.state = 2 }()

	l := ls.spec
	ls.out = Layer{
		Name: l.Name, Profile: ls.att.profile.Spec.Name, ProfileVersion: ls.att.profile.Spec.Version,
		Kind: l.Kind, DependsOn: l.DependsOn, Presets: l.Presets, Spec: l,
		Version: layerVersion(l),
	}
	env := r.env(ls)
	values := map[string]any{}
	var p *pack.Pack
	switch {
	case l.Pack != nil:
		ls.out.Source, ls.out.Package = SourcePack, l.Pack.Name
		p = r.loadPack(ls, l.Pack, ".pack")
	case l.Manifests != nil && l.Manifests.FromPack != nil:
		ls.out.Source, ls.out.Package = SourceManifests, l.Manifests.FromPack.Name
		ls.out.Version = l.Manifests.FromPack.Version
		p = r.loadPack(ls, l.Manifests.FromPack, ".manifests.fromPack")
	case l.Manifests != nil:
		ls.out.Source = SourceManifests
	case l.Chart != nil:
		ls.out.Source, ls.out.Package = SourceChart, chartName(l.Chart)
	case l.Zarf != nil:
		ls.out.Source, ls.out.Package = SourceZarf, l.Zarf.Package
	}
	ls.out.Pack = p
	if p != nil {
		ls.out.PackDigest = p.Digest
	}

	if p != nil {
		if p.Layer != pack.LayerKind(l.Kind) && !p.PlainChart {
			r.layerFinding(ls, ".kind", "%q, but pack %s is a %s pack", l.Kind, p.ID(), p.Layer)
		}
		// Most packs' defaults hold no macro: copy what the loader parsed.
		defaults, ok := vals.DeepCopy(p.Values).(map[string]any), true
		if bytes.Contains(p.ValuesYAML, []byte(".spectro.")) {
			defaults, ok = r.parseExpanded(string(p.ValuesYAML), env, func(format string, args ...any) {
				r.fs.Add(profile.Source{File: p.Path + "/" + pack.ValuesFile}, p.String(), "", format, args...)
			})
		}
		if !ok {
			return
		}
		values = defaults
		if !r.applyPresets(ls, p, values, env) {
			return
		}
	}
	base := vals.DeepCopy(values).(map[string]any)

	layerValues, ok := r.parseExpanded(l.Values, env, func(format string, args ...any) {
		r.layerFinding(ls, ".values", format, args...)
	})
	if !ok {
		return
	}
	values = vals.Merge(values, layerValues)
	for j, o := range r.cluster.Spec.Overrides {
		if o.Layer != l.Name {
			continue
		}
		over, ok := r.parseExpanded(o.Values, env, func(format string, args ...any) {
			r.clusterFinding(fmt.Sprintf("spec.overrides[%d].values", j), format, args...)
		})
		if !ok {
			return
		}
		values = vals.Merge(values, over)
	}

	ls.out.Values, ls.out.Secrets = r.revealMasked(values)
	r.settle(ls, p)
	if p != nil {
		r.checkSchema(ls, p, base)
	}
	sort.Strings(ls.out.Secrets)
	ls.out.Secrets = slices.Compact(ls.out.Secrets)
	ls.ok = true
}

func (r *resolver) loadPack(ls *layerState, ref *v1.PackSource, field string) *pack.Pack {
	if r.packs == nil {
		r.layerFinding(ls, field, "pack %s %s: no pack folders given (--packs DIR)", ref.Name, ref.Version)
		return nil
	}
	var p *pack.Pack
	var err error
	switch named, ok := r.packs.(RegistryPacks); {
	case ref.Registry == "":
		p, err = r.packs.Pack(ref.Name, ref.Version)
	case ok:
		p, err = named.PackFrom(ref.Registry, ref.Name, ref.Version)
	default:
		err = fmt.Errorf("pack %s %s: registry %q: no pack registry is given here (--registry, or a PackRegistry for the manager)", ref.Name, ref.Version, ref.Registry)
	}
	if err != nil {
		r.layerFinding(ls, field, "%v", err)
		return nil
	}
	return p
}

// parseExpanded expands macros in YAML text and parses it as a mapping.
func (r *resolver) parseExpanded(text string, env macro.Env, report func(string, ...any)) (map[string]any, bool) {
	out := map[string]any{}
	if strings.TrimSpace(text) == "" {
		return out, true
	}
	expanded, err := macro.Expand(text, env)
	if err != nil {
		report("unresolvable macro: %v", err)
		return nil, false
	}
	if err := yaml.Unmarshal([]byte(expanded), &out); err != nil {
		report("invalid YAML after expanding macros: %v", r.hideMasked(err))
		return nil, false
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, true
}

// hideMasked keeps placeholders (never the masked values) in an error.
func (r *resolver) hideMasked(err error) error {
	msg := err.Error()
	for _, real := range r.masked {
		if real != "" {
			msg = strings.ReplaceAll(msg, real, Masked)
		}
	}
	return errors.New(msg)
}

// applyPresets applies the pack's enabled presets, one per group, where the
// layer's own choice replaces the pack's default for that group.
func (r *resolver) applyPresets(ls *layerState, p *pack.Pack, values map[string]any, env macro.Env) bool {
	for j, s := range ls.spec.Presets {
		ref, err := pack.ParsePresetRef(s)
		if err != nil {
			continue // reported by profile validation
		}
		if _, ok := p.Preset(ref); !ok {
			r.layerFinding(ls, fmt.Sprintf(".presets[%d]", j), "unknown preset %s: pack %s has %s", ref, p.ID(), presetNames(p))
			return false
		}
	}
	chosen := r.chosenPresets(ls, p)
	for _, pr := range p.Presets {
		if chosen[pr.Group] != pr.Ref() {
			continue
		}
		for _, path := range pr.Remove {
			removePath(values, path)
		}
		add, ok := vals.DeepCopy(pr.AddValues).(map[string]any), true
		if strings.Contains(pr.Add, ".spectro.") || (pr.AddValues == nil && strings.TrimSpace(pr.Add) != "") {
			add, ok = r.parseExpanded(pr.Add, env, func(format string, args ...any) {
				r.fs.Add(profile.Source{File: p.Path + "/" + pack.PresetsFile}, p.String(), "preset "+pr.Ref().String(), format, args...)
			})
		}
		if !ok {
			return false
		}
		vals.Merge(values, add)
	}
	return true
}

// chosenPresets is the preset of each group a layer uses: the pack's
// enabled ones, replaced group by group by the layer's own choices.
func (r *resolver) chosenPresets(ls *layerState, p *pack.Pack) map[string]pack.PresetRef {
	chosen := map[string]pack.PresetRef{}
	for _, ref := range p.EnabledPresets {
		chosen[ref.Group] = ref
	}
	for _, s := range ls.spec.Presets {
		if ref, err := pack.ParsePresetRef(s); err == nil {
			if _, ok := p.Preset(ref); ok {
				chosen[ref.Group] = ref
			}
		}
	}
	return chosen
}

func presetNames(p *pack.Pack) string {
	if len(p.Presets) == 0 {
		return "no presets"
	}
	names := make([]string, len(p.Presets))
	for i, pr := range p.Presets {
		names[i] = pr.Ref().String()
	}
	return strings.Join(names, ", ")
}

// revealMasked puts masked values back in place of their placeholders and
// returns the paths that hold them.
func (r *resolver) revealMasked(values map[string]any) (map[string]any, []string) {
	var secrets []string
	if len(r.masked) == 0 {
		return values, nil
	}
	out := walkStrings(values, "", func(path, s string) string {
		if !strings.Contains(s, "strata-masked-") {
			return s
		}
		for ph, real := range r.masked {
			if strings.Contains(s, ph) {
				s = strings.ReplaceAll(s, ph, real)
				secrets = append(secrets, path)
			}
		}
		return s
	}).(map[string]any)
	return out, secrets
}

// settle derives namespace, release name and install priority.
func (r *resolver) settle(ls *layerState, p *pack.Pack) {
	l := ls.spec
	settings, _ := ls.out.Values["pack"].(map[string]any)
	ls.out.Namespace = l.Namespace
	if ls.out.Namespace == "" {
		ls.out.Namespace, _ = settings["namespace"].(string)
	}
	if ls.out.Namespace == "" && p != nil {
		// Manifest packs carry their namespace in manifests.<name>.namespace.
		for _, m := range p.Manifests {
			if ns, ok := pack.ManifestValues(ls.out.Values, m.Name)["namespace"].(string); ok && ns != "" {
				ls.out.Namespace = ns
				break
			}
		}
	}
	if ls.out.Namespace == "" {
		ls.out.Namespace = "default"
	}
	ls.out.ReleaseName = l.Name
	if p != nil {
		if overrides, ok := settings["releaseNameOverride"].(map[string]any); ok {
			for _, c := range p.Charts {
				if name, ok := overrides[c.Name].(string); ok && name != "" {
					ls.out.ReleaseName = name
					break
				}
			}
		}
	}
	switch {
	case l.InstallPriority != nil:
		ls.out.InstallPriority = int(*l.InstallPriority)
	default:
		switch v := settings["spectrocloud.com/install-priority"].(type) {
		case float64:
			ls.out.InstallPriority = int(v)
		case string:
			ls.out.InstallPriority, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
}

// checkSchema tests the final values against the pack's schema.yaml, and
// marks ${password} values as secrets. A path with "$[]" applies to every
// element of a list.
func (r *resolver) checkSchema(ls *layerState, p *pack.Pack, base map[string]any) {
	for _, c := range p.Schema {
		found := pack.LookupAll(ls.out.Values, c.Path)
		field := fmt.Sprintf("layer %q value %q", ls.spec.Name, c.Path)
		if len(found) == 0 && (!r.preview || !c.Required) {
			// In a preview a required value is the cluster's to give, not the profile's.
			if err := c.Check(nil, false); err != nil {
				r.clusterFinding(field, "%s (schema.yaml of pack %s)", withHints(err, c), p.ID())
			}
		}
		for _, f := range found {
			if r.preview && c.Required && (f.Value == nil || f.Value == "") {
				continue
			}
			if err := c.Check(f.Value, true); err != nil {
				r.clusterFinding(fmt.Sprintf("layer %q value %q", ls.spec.Name, f.Path), "%s (schema.yaml of pack %s)", withHints(err, c), p.ID())
			}
			if c.Secret && f.Value != "" && f.Value != nil {
				ls.out.Secrets = append(ls.out.Secrets, f.Path)
			}
		}
		if c.ReadOnly {
			if want := foundValues(pack.LookupAll(base, c.Path)); !reflect.DeepEqual(foundValues(found), want) {
				var shown any = want
				if len(want) == 1 {
					shown = want[0]
				}
				r.clusterFinding(field, "read-only in pack %s: want the pack's value %v", p.ID(), shown)
			}
		}
	}
}

func withHints(err error, c pack.Constraint) string {
	if c.Hints != "" {
		return err.Error() + "; " + c.Hints
	}
	return err.Error()
}

func foundValues(found []pack.Found) []any {
	out := make([]any, len(found))
	for i, f := range found {
		out[i] = f.Value
	}
	return out
}

// packValue resolves {{.spectro.pack.NAME.PATH}}: the final value at PATH of
// the layer that uses pack NAME. A layer still being resolved (a pack whose
// values name its own values, or two layers naming each other's) answers
// from its values as written; only a value that leads back to itself is a
// cycle.
func (r *resolver) packValue(name, path string) (any, error) {
	ls, ok := r.byPack[name]
	if !ok {
		return nil, fmt.Errorf("no layer of the cluster uses pack %q", name)
	}
	if ls.state == 1 {
		return r.valueAsWritten(ls, name, path)
	}
	r.resolveLayer(ls)
	if !ls.ok {
		return nil, fmt.Errorf("layer %q (pack %s) has errors", ls.spec.Name, name)
	}
	v, ok := pack.Lookup(ls.out.Values, path)
	if !ok {
		return nil, fmt.Errorf("pack %q has no value %q", name, path)
	}
	return v, nil
}

// valueAsWritten is the value at path of a layer whose resolution is under
// way: its pack defaults, presets, profile values and cluster overrides
// merged as written, with the macros of that one value expanded.
func (r *resolver) valueAsWritten(ls *layerState, name, path string) (any, error) {
	key := name + "." + path
	if r.following[key] {
		return nil, fmt.Errorf("value %q of pack %q refers back to itself through {{.spectro.pack}} macros", path, name)
	}
	if a, ok := ls.answers[path]; ok {
		return a.value, a.err
	}
	if ls.written == nil {
		ls.written = r.writtenValues(ls)
	}
	v, ok := pack.Lookup(ls.written, path)
	if !ok {
		return nil, fmt.Errorf("pack %q has no value %q", name, path)
	}
	if s, isString := v.(string); isString && strings.Contains(s, ".spectro.") {
		if r.following == nil {
			r.following = map[string]bool{}
		}
		r.following[key] = true
		v, err := macro.Expand(s, r.env(ls))
		delete(r.following, key)
		// A value that leads back to one being followed is in a cycle with
		// it, so its answer (the cycle's error included) holds for any caller.
		if ls.answers == nil {
			ls.answers = map[string]answer{}
		}
		ls.answers[path] = answer{v, err}
		return v, err
	}
	return v, nil
}

// writtenValues merges a layer's values without expanding macros; parts
// that are YAML only once expanded are left out (the resolution reports them).
func (r *resolver) writtenValues(ls *layerState) map[string]any {
	values := map[string]any{}
	if p := ls.out.Pack; p != nil {
		values = vals.DeepCopy(p.Values).(map[string]any)
		chosen := r.chosenPresets(ls, p)
		for _, pr := range p.Presets {
			if chosen[pr.Group] == pr.Ref() {
				for _, path := range pr.Remove {
					removePath(values, path)
				}
				vals.Merge(values, vals.DeepCopy(pr.AddValues).(map[string]any))
			}
		}
	}
	texts := []string{ls.spec.Values}
	for _, o := range r.cluster.Spec.Overrides {
		if o.Layer == ls.spec.Name {
			texts = append(texts, o.Values)
		}
	}
	for _, text := range texts {
		var m map[string]any
		if yaml.Unmarshal([]byte(text), &m) == nil && m != nil {
			values = vals.Merge(values, m)
		}
	}
	return values
}

func (r *resolver) env(ls *layerState) macro.Env {
	return macro.Env{Vars: ls.att.vars, System: r.system(ls.att), PackValue: r.packValue}
}

func layerVersion(l v1.Layer) string {
	switch {
	case l.Pack != nil:
		return l.Pack.Version
	case l.Chart != nil:
		return l.Chart.Version
	case l.Manifests != nil && l.Manifests.FromPack != nil:
		return l.Manifests.FromPack.Version
	}
	return ""
}

func chartName(c *v1.ChartSource) string {
	if c.Name != "" {
		return c.Name
	}
	return c.Repository[strings.LastIndex(c.Repository, "/")+1:]
}

// FindProfile picks the version of a profile a cluster follows: the one
// named exactly, else the newest that the semantic-version range (1.x,
// ~1.2, >=1.0.0 <2.0.0) allows. Pre-releases are picked only by a range
// that names one, as semver ranges do; drafts only when named exactly
// (the caller refuses them where clusters run).
func FindProfile(profiles []profile.Profile, name, version string) (profile.Profile, bool) {
	var best profile.Profile
	var bestVersion *semver.Version
	constraint, rangeErr := semver.NewConstraint(version)
	for _, p := range profiles {
		if p.Spec.Name != name {
			continue
		}
		if p.Spec.Version == version {
			return p, true
		}
		v, err := semver.NewVersion(p.Spec.Version)
		if p.Spec.Draft || rangeErr != nil || err != nil || !constraint.Check(v) {
			continue
		}
		if bestVersion == nil || v.GreaterThan(bestVersion) {
			best, bestVersion = p, v
		}
	}
	return best, bestVersion != nil
}

func versionsOf(profiles []profile.Profile, name string) string {
	var vs []string
	for _, p := range profiles {
		if p.Spec.Name == name {
			vs = append(vs, p.Spec.Version)
		}
	}
	if len(vs) == 0 {
		return ""
	}
	sort.Strings(vs)
	return "; versions given: " + strings.Join(vs, ", ")
}
