package dashboard

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/pmezard/go-difflib/difflib"
	authorizationv1 "k8s.io/api/authorization/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/provider/clusterapi"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/rollout"
)

// clusterRow is a cluster in the clusters table.
type clusterRow struct {
	Namespace, Name, Phase, Updates string
	// Agent is how an agent-mode cluster's agent stands; empty in push mode.
	Agent string
	// CAPI is what Cluster API says of a capi cluster; empty otherwise.
	CAPI          string
	Profiles      []controller.ProfileRef
	Ready, Layers int
	Drifted       bool
}

type clusterFilter struct {
	Project, Label, Profile, Pack, Phase string
}

type clustersPage struct {
	page
	Filter   clusterFilter
	Phases   []string
	Fleet    fleetPicture
	Clusters []clusterRow
	Error    string
}

func (s *Server) clusters(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	f := clusterFilter{Project: q.Get("project"), Label: q.Get("label"), Profile: q.Get("profile"), Pack: q.Get("pack"), Phase: q.Get("phase")}
	data := clustersPage{page: s.newPage(r, "Clusters", "clusters"), Filter: f, Phases: []string{string(v1.ClusterReady), string(v1.ClusterFailed), "Pending"}}
	opts := []client.ListOption{}
	if f.Project != "" {
		opts = append(opts, client.InNamespace(f.Project))
	}
	if f.Label != "" {
		sel, err := labels.Parse(f.Label)
		if err != nil {
			data.Error = fmt.Sprintf("label %q: %v", f.Label, err)
			s.render(w, r, "clusters", data)
			return
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	var list v1.ClusterList
	if err := c.List(r.Context(), &list, opts...); err != nil {
		s.fail(w, r, err)
		return
	}
	data.Fleet = fleetOf(list.Items, visibleProfiles(r, c, f.Project))
	for i := range list.Items {
		cl := &list.Items[i]
		row := toRow(cl)
		if f.Phase != "" && row.Phase != f.Phase || f.Profile != "" && !attaches(cl, f.Profile) || f.Pack != "" && !runsPack(cl, f.Pack) {
			continue
		}
		data.Clusters = append(data.Clusters, row)
	}
	s.render(w, r, "clusters", data)
}

func toRow(cl *v1.Cluster) clusterRow {
	row := clusterRow{Namespace: cl.Namespace, Name: cl.Name, Phase: string(cl.Status.Phase), Profiles: controller.AttachedProfiles(cl), Layers: len(cl.Status.Layers), Agent: controller.AgentState(cl)}
	if row.Phase == "" {
		row.Phase = "Pending"
	}
	for _, l := range cl.Status.Layers {
		if l.Phase == "Ready" {
			row.Ready++
		}
	}
	if cl.Status.PendingPlan != nil {
		row.Updates = cl.Status.PendingPlan.Summary
	}
	row.Drifted = apimeta.IsStatusConditionTrue(cl.Status.Conditions, v1.ConditionDrifted)
	if cl.Spec.Provider == v1.ProviderCAPI {
		row.CAPI = clusterapi.Summary(cl.Status.CAPI)
	}
	return row
}

// visibleProfiles lists the profile versions a project's clusters see —
// its own and the shared ones — or every one when no project is chosen;
// what the user may not list is left out (the fleet picture then shows no
// newest version or roll-out from it).
func visibleProfiles(r *http.Request, c client.Client, project string) []v1.ClusterProfile {
	var out []v1.ClusterProfile
	scopes := [][]client.ListOption{nil}
	if project != "" {
		scopes = [][]client.ListOption{{client.InNamespace(project)}, {client.InNamespace(controller.SharedNamespace)}}
	}
	for _, opts := range scopes {
		var list v1.ClusterProfileList
		if err := c.List(r.Context(), &list, opts...); err == nil {
			out = append(out, list.Items...)
		}
	}
	return out
}

// attaches tells whether the cluster attaches a profile (name), or runs
// one version of it (name@version).
func attaches(cl *v1.Cluster, profile string) bool {
	name, version, pinned := strings.Cut(profile, "@")
	return slices.ContainsFunc(controller.AttachedProfiles(cl), func(a controller.ProfileRef) bool {
		return a.Name == name && (!pinned || a.Version == version)
	})
}

// runsPack tells whether a layer of the cluster runs name@version (or name
// at any version).
func runsPack(cl *v1.Cluster, pack string) bool {
	name, version, _ := strings.Cut(pack, "@")
	return slices.ContainsFunc(cl.Status.Layers, func(l v1.LayerStatus) bool {
		return packageOf(l) == name && (version == "" || l.Version == version)
	})
}

func packageOf(l v1.LayerStatus) string {
	return cmp.Or(l.Package, l.Name)
}

type plannedLayer struct {
	v1.PlannedLayer
	Rows []diffRow
}

type event struct {
	Time, Type, Reason, Note string
}

type clusterPage struct {
	page
	Cluster    *v1.Cluster
	Stack      stackPicture
	Profiles   []controller.ProfileRef
	Plan       []plannedLayer
	CanApprove bool
	Events     []event
	// CAPISummary is what Cluster API says of a capi cluster.
	CAPISummary string
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	cl := &v1.Cluster{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, cl); err != nil {
		s.fail(w, r, err)
		return
	}
	data := clusterPage{page: s.newPage(r, cl.Name, "clusters"), Cluster: cl, Stack: clusterStack(cl), Profiles: controller.AttachedProfiles(cl),
		CAPISummary: clusterapi.Summary(cl.Status.CAPI)}
	if p := cl.Status.PendingPlan; p != nil {
		for _, l := range p.Layers {
			data.Plan = append(data.Plan, plannedLayer{PlannedLayer: l, Rows: sideBySide(l.ValuesDiff)})
		}
		data.CanApprove = allowed(r, c, "patch", cl.Namespace)
	}
	var events eventsv1.EventList
	if err := c.List(ctx, &events, client.InNamespace(cl.Namespace)); err == nil {
		slices.SortFunc(events.Items, func(a, b eventsv1.Event) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
		for _, e := range events.Items {
			if e.Regarding.Kind == "Cluster" && e.Regarding.Name == cl.Name && len(data.Events) < 20 {
				data.Events = append(data.Events, event{Time: e.CreationTimestamp.UTC().Format("15:04:05"), Type: e.Type, Reason: e.Reason, Note: e.Note})
			}
		}
	}
	s.render(w, r, "cluster", data)
}

// allowed asks the management plane whether the user may verb clusters in
// the namespace.
func allowed(r *http.Request, c client.Client, verb, namespace string) bool {
	return allowedOn(r, c, "clusters", verb, namespace)
}

// allowedOn asks whether the user may verb a resource of Strata's group.
func allowedOn(r *http.Request, c client.Client, resource, verb, namespace string) bool {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: v1.GroupVersion.Group, Resource: resource, Verb: verb, Namespace: namespace},
	}}
	if err := c.Create(r.Context(), review); err != nil {
		return false
	}
	return review.Status.Allowed
}

// approve approves the plan the user saw — only if it is still the
// pending one — as the user.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cl := &v1.Cluster{}
	if err := c.Get(r.Context(), client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, cl); err != nil {
		s.fail(w, r, err)
		return
	}
	digest := r.PostFormValue("digest")
	if cl.Status.PendingPlan == nil || cl.Status.PendingPlan.Digest != digest {
		s.renderStatus(w, r, http.StatusConflict, "error", errorPage{page: s.newPage(r, "The plan changed", ""), Message: "the pending plan is no longer the one you reviewed: review it again before approving"})
		return
	}
	patch := client.MergeFrom(cl.DeepCopy())
	cl.Spec.ApprovedPlan = digest
	if err := c.Patch(r.Context(), cl, patch); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/clusters/"+cl.Namespace+"/"+cl.Name, http.StatusSeeOther)
}

type profileVersion struct {
	Version, Valid string
	Stack          stackPicture
	// Draft versions show their impact, and Publish to those allowed.
	Draft      bool
	Impact     *impactView
	CanPublish bool
	// Object and Generation name the version's object as the user saw it.
	Object            string
	Generation        int64
	Warnings          []string
	Layers, Variables []string
	Clusters          []string
	semver            *semver.Version
}

type profileGroup struct {
	Namespace, Name, Type, Latest string
	Versions                      []profileVersion
}

type profilesPage struct {
	page
	Profiles []profileGroup
	Error    string
}

// profileVersions lists the profile versions the user may see, or answers
// the request with why not.
func (s *Server) profileVersions(w http.ResponseWriter, r *http.Request) (client.Client, *v1.ClusterProfileList, bool) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	var profiles v1.ClusterProfileList
	if err := c.List(r.Context(), &profiles); err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return c, &profiles, true
}

func (s *Server) profiles(w http.ResponseWriter, r *http.Request) {
	c, profiles, ok := s.profileVersions(w, r)
	if !ok {
		return
	}
	data := profilesPage{page: s.newPage(r, "Profiles", "profiles")}
	var clusters v1.ClusterList
	if err := c.List(r.Context(), &clusters); err != nil {
		data.Error = "which clusters use each version is not shown: " + err.Error()
	}
	groups := map[string]*profileGroup{}
	for _, p := range profiles.Items {
		key := p.Namespace + "/" + p.Spec.Name
		g := groups[key]
		if g == nil {
			g = &profileGroup{Namespace: p.Namespace, Name: p.Spec.Name, Type: string(p.Spec.Type)}
			groups[key] = g
		}
		pv := profileVersion{Version: p.Spec.Version, Valid: "-", Stack: profileStack(&p), Draft: p.Spec.Draft, Object: p.Name, Generation: p.Generation}
		if p.Spec.Draft {
			pv.Impact = impactOf(&p)
			pv.CanPublish = allowedOn(r, c, "clusterprofiles", "patch", p.Namespace)
		}
		pv.semver, _ = semver.NewVersion(p.Spec.Version)
		if cond := apimeta.FindStatusCondition(p.Status.Conditions, controller.ConditionValid); cond != nil {
			pv.Valid = string(cond.Status)
			for _, line := range strings.Split(cond.Message, "\n") {
				if w, ok := strings.CutPrefix(line, controller.WarningPrefix); ok {
					pv.Warnings = append(pv.Warnings, w)
				}
			}
		}
		for _, l := range p.Spec.Layers {
			pv.Layers = append(pv.Layers, layerSummary(l))
		}
		for _, v := range p.Spec.Variables {
			text := v.Name
			if v.Masked {
				text += " (masked)"
			}
			pv.Variables = append(pv.Variables, text)
		}
		for _, cl := range clusters.Items {
			if uses(&cl, &p) {
				pv.Clusters = append(pv.Clusters, cl.Namespace+"/"+cl.Name)
			}
		}
		g.Versions = append(g.Versions, pv)
	}
	for _, g := range groups {
		slices.SortFunc(g.Versions, func(a, b profileVersion) int {
			if a.semver != nil && b.semver != nil {
				return a.semver.Compare(b.semver)
			}
			return strings.Compare(a.Version, b.Version)
		})
		g.Latest = g.Versions[len(g.Versions)-1].Version
		data.Profiles = append(data.Profiles, *g)
	}
	slices.SortFunc(data.Profiles, func(a, b profileGroup) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	s.render(w, r, "profiles", data)
}

func layerSummary(l v1.Layer) string {
	switch {
	case l.Pack != nil:
		return fmt.Sprintf("%s (%s pack %s %s)", l.Name, l.Kind, l.Pack.Name, l.Pack.Version)
	case l.Chart != nil:
		return fmt.Sprintf("%s (%s chart %s %s)", l.Name, l.Kind, l.Chart.Name, l.Chart.Version)
	case l.Zarf != nil:
		return fmt.Sprintf("%s (%s zarf)", l.Name, l.Kind)
	default:
		return fmt.Sprintf("%s (%s manifests)", l.Name, l.Kind)
	}
}

// uses tells whether the cluster runs that profile version, or pins it.
func uses(cl *v1.Cluster, p *v1.ClusterProfile) bool {
	if cl.Namespace != p.Namespace && p.Namespace != controller.SharedNamespace {
		return false
	}
	for _, ref := range controller.AttachedProfiles(cl) {
		if ref.Name == p.Spec.Name && ref.Version == p.Spec.Version {
			return true
		}
	}
	return false
}

type diffPage struct {
	page
	Namespace, Name, From, To string
	Rows                      []diffRow
}

func (s *Server) profileDiff(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	from, to := r.URL.Query().Get("from"), r.URL.Query().Get("to")
	var texts [2]string
	for i, version := range []string{from, to} {
		p := &v1.ClusterProfile{}
		if err := c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name + "-" + version}, p); err != nil {
			s.fail(w, r, err)
			return
		}
		spec := p.Spec.DeepCopy()
		spec.Version = ""
		for i := range spec.Variables {
			// Masked values never reach the browser.
			if spec.Variables[i].Masked && spec.Variables[i].Default != "" {
				spec.Variables[i].Default = "(masked)"
			}
		}
		out, err := yaml.Marshal(spec)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		texts[i] = string(out)
	}
	data := diffPage{page: s.newPage(r, name+" "+from+" → "+to, "profiles"), Namespace: ns, Name: name, From: from, To: to}
	if texts[0] != texts[1] {
		unified, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(texts[0]), B: difflib.SplitLines(texts[1]), FromFile: from, ToFile: to, Context: 3})
		data.Rows = sideBySide(unified)
	}
	s.render(w, r, "diff", data)
}

type inventoryRow struct {
	Package, Source, Version string
	Count                    int
}

type inventoryPage struct {
	page
	Rows  []inventoryRow
	Error string
}

func (s *Server) inventory(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var clusters v1.ClusterList
	if err := c.List(r.Context(), &clusters); err != nil {
		s.fail(w, r, err)
		return
	}
	counts := map[inventoryRow]int{}
	for _, cl := range clusters.Items {
		seen := map[inventoryRow]bool{}
		for _, l := range cl.Status.Layers {
			if l.Source == "manifests" || l.Version == "" {
				continue // inline manifests have no version to count
			}
			key := inventoryRow{Package: packageOf(l), Source: l.Source, Version: l.Version}
			if !seen[key] {
				seen[key] = true
				counts[key]++
			}
		}
	}
	data := inventoryPage{page: s.newPage(r, "Inventory", "inventory")}
	for row, n := range counts {
		row.Count = n
		data.Rows = append(data.Rows, row)
	}
	slices.SortFunc(data.Rows, func(a, b inventoryRow) int {
		return cmp.Or(strings.Compare(a.Package, b.Package), strings.Compare(a.Version, b.Version))
	})
	s.render(w, r, "inventory", data)
}

type packsPage struct {
	page
	Packs []registry.PackUse
	Error string
}

// packs lists the pack versions of the registries the user may see, who
// uses each, and where a newer version is published.
func (s *Server) packs(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var regs v1.PackRegistryList
	if err := c.List(r.Context(), &regs); err != nil {
		s.fail(w, r, err)
		return
	}
	data := packsPage{page: s.newPage(r, "Packs", "packs")}
	var profiles v1.ClusterProfileList
	var clusters v1.ClusterList
	if err := c.List(r.Context(), &profiles); err != nil {
		data.Error = "which profiles use each pack is not shown: " + err.Error()
	}
	if err := c.List(r.Context(), &clusters); err != nil {
		data.Error = "which clusters run each pack is not shown: " + err.Error()
	}
	data.Packs = registry.Usage(regs.Items, profiles.Items, clusters.Items)
	s.render(w, r, "packs", data)
}

type rolloutsPage struct {
	page
	Rollouts []rolloutView
}

type rolloutView struct {
	Namespace string
	rollout.Report
}

// rollouts draws every profile version with a roll-out policy the user may
// see as its waves, newest first: which clusters are where, what halted it.
func (s *Server) rollouts(w http.ResponseWriter, r *http.Request) {
	_, profiles, ok := s.profileVersions(w, r)
	if !ok {
		return
	}
	data := rolloutsPage{page: s.newPage(r, "Roll-outs", "rollouts")}
	items := profiles.Items
	sort.Slice(items, func(i, j int) bool { return items[j].CreationTimestamp.Before(&items[i].CreationTimestamp) })
	for i := range items {
		if report, err := rollout.ReportOf(&items[i]); err == nil {
			data.Rollouts = append(data.Rollouts, rolloutView{Namespace: items[i].Namespace, Report: report})
		}
	}
	s.render(w, r, "rollouts", data)
}

// diffRow is one line of a side-by-side diff: removed lines on the left,
// added on the right, context on both.
type diffRow struct {
	Left, Right string
	Del, Add    bool
}

// sideBySide lays a unified diff out in two columns, pairing each run of
// removed lines with the added lines that follow it.
func sideBySide(unified string) []diffRow {
	var rows []diffRow
	var dels, adds []string
	flush := func() {
		for i := 0; i < max(len(dels), len(adds)); i++ {
			var row diffRow
			if i < len(dels) {
				row.Left, row.Del = dels[i], true
			}
			if i < len(adds) {
				row.Right, row.Add = adds[i], true
			}
			rows = append(rows, row)
		}
		dels, adds = nil, nil
	}
	for _, line := range strings.Split(strings.TrimRight(unified, "\n"), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "---") || strings.HasPrefix(line, "+++"):
		case strings.HasPrefix(line, "@@"):
			flush()
			rows = append(rows, diffRow{Left: "…", Right: "…"})
		case strings.HasPrefix(line, "-"):
			dels = append(dels, line[1:])
		case strings.HasPrefix(line, "+"):
			adds = append(adds, line[1:])
		default:
			flush()
			text := strings.TrimPrefix(line, " ")
			rows = append(rows, diffRow{Left: text, Right: text})
		}
	}
	flush()
	return rows
}
