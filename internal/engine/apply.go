package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/resource"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release"
	releasecommon "helm.sh/helm/v4/pkg/release/common"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// Result is what an apply did, layer by layer.
type Result struct {
	Stack  string        `json:"stack"`
	Layers []LayerResult `json:"layers"`
}

// LayerResult is the outcome for one layer.
type LayerResult struct {
	Name    string `json:"name"`
	Action  Action `json:"action"`
	Phase   Phase  `json:"phase"`
	Objects int    `json:"objects"`
	// Writes is the number of write requests made for this layer.
	Writes int64 `json:"writes"`
	// Repaired lists drifted objects that were put back.
	Repaired []string `json:"repaired,omitempty"`
	// Drifted lists drifted objects left as they are (ReportDrift).
	Drifted []string `json:"drifted,omitempty"`
	// Images are those a Zarf layer's components run.
	Images  []string `json:"images,omitempty"`
	Message string   `json:"message,omitempty"`
}

// Failed reports whether any layer did not end Ready (or Removed, or
// Drifted where drift is only reported).
func (r *Result) Failed() bool {
	for _, l := range r.Layers {
		if l.Phase != PhaseReady && l.Phase != PhaseRemoved && l.Phase != PhaseDrifted {
			return true
		}
	}
	return false
}

// layerAction is one step of a layer's lifecycle, chosen by the plan.
type layerAction interface {
	phase() Phase
	run(ctx context.Context, e *Engine, lp *LayerPlan) error
}

type installAction struct{}
type upgradeAction struct{}
type removeAction struct{}
type keepAction struct{}

func actionFor(a Action) layerAction {
	switch a {
	case ActionInstall:
		return installAction{}
	case ActionUpgrade:
		return upgradeAction{}
	case ActionRemove:
		return removeAction{}
	default:
		return keepAction{}
	}
}

func (installAction) phase() Phase { return PhaseInstalling }
func (upgradeAction) phase() Phase { return PhaseUpgrading }
func (removeAction) phase() Phase  { return PhaseRemoving }
func (keepAction) phase() Phase    { return PhaseReady }

// serverValidates leaves schema validation to the API server: Helm's
// server-side applies ask it for strict field validation, so an unknown or
// mistyped field is refused there just the same. Helm's own check first
// downloads and parses the cluster's OpenAPI documents at every install
// and upgrade only to learn that the server validates — a third of a
// manager's CPU over a fleet, and the documents' size in memory each time.
const serverValidates = true

func (installAction) run(ctx context.Context, e *Engine, lp *LayerPlan) error {
	if err := e.prepare(ctx, lp); err != nil {
		return err
	}
	cfg, err := e.layerHelm(lp)
	if err != nil {
		return err
	}
	if err := dropInterrupted(cfg, lp.layer.ReleaseName); err != nil {
		return err
	}
	// A failed earlier attempt leaves a release record; replace it.
	if _, err := cfg.Releases.Last(lp.layer.ReleaseName); err == nil {
		return upgradeAction{}.run(ctx, e, lp)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = lp.layer.ReleaseName, lp.layer.Namespace
	in.ServerSideApply, in.ForceConflicts = true, true
	in.WaitStrategy, in.Timeout = kube.HookOnlyStrategy, e.opts.Timeout
	in.DisableOpenAPIValidation = serverValidates
	in.Labels = releaseLabels(lp)
	_, err = in.RunWithContext(ctx, lp.chart, lp.values)
	return err
}

func (upgradeAction) run(ctx context.Context, e *Engine, lp *LayerPlan) error {
	if lp.replace {
		if err := (removeAction{}).run(ctx, e, lp); err != nil {
			return fmt.Errorf("remove %s/%s before installing it again: %w", lp.recorded.Namespace, lp.recorded.ReleaseName, err)
		}
		return installAction{}.run(ctx, e, lp)
	}
	if err := e.prepare(ctx, lp); err != nil {
		return err
	}
	cfg, err := e.layerHelm(lp)
	if err != nil {
		return err
	}
	if err := dropInterrupted(cfg, lp.layer.ReleaseName); err != nil {
		return err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = lp.layer.Namespace
	up.ServerSideApply, up.ForceConflicts = "true", true
	up.WaitStrategy, up.Timeout = kube.HookOnlyStrategy, e.opts.Timeout
	up.DisableOpenAPIValidation = serverValidates
	up.MaxHistory = 5
	up.Labels = releaseLabels(lp)
	// A layer swapped to another package in place, or a release someone
	// deleted by hand, is installed afresh.
	_, err = up.RunWithContext(ctx, lp.layer.ReleaseName, lp.chart, lp.values)
	if errors.Is(err, driver.ErrNoDeployedReleases) || errors.Is(err, driver.ErrReleaseNotFound) {
		if _, lastErr := cfg.Releases.Last(lp.layer.ReleaseName); lastErr == nil {
			un := action.NewUninstall(cfg)
			un.KeepHistory = false
			if _, err := un.Run(lp.layer.ReleaseName); err != nil {
				return fmt.Errorf("clear failed release %s: %w", lp.layer.ReleaseName, err)
			}
		}
		return installAction{}.run(ctx, e, lp)
	}
	return err
}

// dropInterrupted removes a release's last record when it is still
// pending: a change that a process killed mid-way (the manager's pod
// evicted, its node lost) never finished. Helm would refuse every later
// change of the release as "another operation is in progress". One process
// changes a cluster's layers — the elected manager, or the cluster's agent
// — so a pending record found here is such a leftover: it goes, and the
// change is made again under the same revision number, which keeps one
// revision per change.
func dropInterrupted(cfg *action.Configuration, name string) error {
	last, err := cfg.Releases.Last(name)
	if err != nil {
		return nil // no record: nothing was interrupted
	}
	rel, err := release.NewAccessor(last)
	if err != nil {
		return err
	}
	if !releasecommon.Status(rel.Status()).IsPending() {
		return nil
	}
	if _, err := cfg.Releases.Delete(name, rel.Version()); err != nil {
		return fmt.Errorf("drop release %s revision %d, left %s by an interrupted change: %w", name, rel.Version(), rel.Status(), err)
	}
	return nil
}

// layerHelm is Helm's configuration for installing or upgrading a layer,
// with a client that notes each object as Helm's apply left it: the
// layer's next drift check then finds it as applied by its watched
// version, with no request, unless someone wrote it since.
func (e *Engine) layerHelm(lp *LayerPlan) (*action.Configuration, error) {
	cfg, err := e.helm(lp.layer.Namespace)
	if err != nil {
		return nil, err
	}
	kc, ok := cfg.KubeClient.(*kube.Client)
	if !ok {
		return cfg, nil
	}
	cfg.KubeClient = recordingKube{Client: kc, applied: func(info *resource.Info) {
		o, err := meta.Accessor(info.Object)
		if err != nil || info.Mapping == nil {
			return
		}
		ns := info.Namespace
		if info.Mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			ns = ""
		}
		e.markWritten(checkKey(info.Mapping.Resource, ns, info.Name), WrittenVersion(o), lp.digest)
	}}
	return cfg, nil
}

// recordingKube is Helm's client, telling what each create or update that
// succeeded left on the cluster (Helm refreshes its objects from the
// server's answers).
type recordingKube struct {
	*kube.Client
	applied func(*resource.Info)
}

func (k recordingKube) Create(resources kube.ResourceList, options ...kube.ClientCreateOption) (*kube.Result, error) {
	res, err := k.Client.Create(resources, options...)
	k.record(res, err)
	return res, err
}

func (k recordingKube) Update(original, target kube.ResourceList, options ...kube.ClientUpdateOption) (*kube.Result, error) {
	res, err := k.Client.Update(original, target, options...)
	k.record(res, err)
	return res, err
}

func (k recordingKube) record(res *kube.Result, err error) {
	if err != nil || res == nil {
		return
	}
	for _, info := range slices.Concat(res.Created, res.Updated) {
		k.applied(info)
	}
}

func (removeAction) run(ctx context.Context, e *Engine, lp *LayerPlan) error {
	cfg, err := e.helm(lp.recorded.Namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = kube.StatusWatcherStrategy, e.opts.Timeout
	un.IgnoreNotFound = true
	// Most of an uninstall is waiting for the objects to go.
	e.waiting(func() { _, err = un.Run(lp.recorded.ReleaseName) })
	if err != nil {
		return err
	}
	return e.releaseNamespaces(ctx, lp.recorded.ReleaseName)
}

// keepAction leaves an unchanged layer alone, except for putting back what
// drifted (or only noting it, when drift is reported).
func (keepAction) run(ctx context.Context, e *Engine, lp *LayerPlan) error {
	drifts, err := e.drift(ctx, lp)
	if err != nil {
		return err
	}
	if e.opts.ReportDrift || lp.reportDrift {
		for _, d := range drifts {
			lp.drifted = append(lp.drifted, d.String())
		}
		return nil
	}
	return e.repair(ctx, lp, drifts)
}

// owned returns an object as Helm applies it for this layer: with the
// release's ownership label and annotations. Applying anything less as
// Strata would strip them, since Helm applies under Strata's field manager.
func (lp *LayerPlan) owned(o object) object {
	if o.unowned {
		return o
	}
	c := object{Unstructured: o.DeepCopy(), hook: o.hook}
	m := metav1.ObjectMeta{Labels: c.GetLabels(), Annotations: c.GetAnnotations()}
	(&owner{release: lp.layer.ReleaseName, namespace: lp.layer.Namespace}).mark(&m)
	c.SetLabels(m.Labels)
	c.SetAnnotations(m.Annotations)
	return c
}

func releaseLabels(lp *LayerPlan) map[string]string {
	return map[string]string{"strata.dev/layer": lp.Name, "strata.dev/profile": lp.layer.Profile, releaseDigestLabel: releaseDigest(lp.digest)}
}

// prepare creates the layer's namespaces and establishes its CRDs before
// Helm applies anything, so custom resources of the same layer map.
func (e *Engine) prepare(ctx context.Context, lp *LayerPlan) error {
	labels := map[string]map[string]string{}
	if settings, ok := lp.layer.Values["pack"].(map[string]any); ok {
		if nl, ok := settings["namespaceLabels"].(map[string]any); ok {
			for ns, l := range nl {
				if s, ok := l.(string); ok {
					labels[ns] = parseLabels(s)
				}
			}
		}
	}
	own := &owner{release: lp.layer.ReleaseName, namespace: lp.layer.Namespace}
	inChart := map[string]bool{}
	for _, o := range lp.objects {
		if o.GetKind() == "Namespace" {
			inChart[o.GetName()] = true
		}
	}
	// The release's namespace, those with labels to set, and every other
	// namespace the layer's objects live in.
	names := []string{InventoryNamespace, lp.layer.Namespace}
	for ns := range labels {
		names = append(names, ns)
	}
	for _, o := range lp.objects {
		if ns := o.GetNamespace(); ns != "" && !inChart[ns] {
			names = append(names, ns)
		}
	}
	slices.Sort(names[2:])
	names = slices.Compact(names)
	for _, ns := range names {
		var o *owner
		if inChart[ns] {
			o = own
		}
		// Namespaces the chart holds go with the release; Strata counts
		// the layers using only those it creates besides.
		release := lp.layer.ReleaseName
		if ns == InventoryNamespace || inChart[ns] {
			release = ""
		}
		if err := e.ensureNamespace(ctx, ns, labels[ns], o, release); err != nil {
			return err
		}
	}
	return e.establishCRDs(ctx, lp)
}

// Apply carries out a plan: removals (last installed first), then each
// layer in stack order. A failing layer blocks the layers that depend on
// it, not the others. The inventory is updated after each layer, so nothing
// half-written is left without a record.
func (e *Engine) Apply(ctx context.Context, plan *Plan) (*Result, error) {
	inv, err := e.readInventory(ctx, plan.Stack)
	if err != nil {
		return nil, err
	}
	res := &Result{Stack: plan.Stack}
	failed := map[string]bool{}
	e.startPass()
	defer e.forgetUnseen()
	for i := range plan.Layers {
		lp := &plan.Layers[i]
		lr := LayerResult{Name: lp.Name, Action: lp.Action, Objects: lp.Objects, Images: lp.Images}
		before := e.Requests()

		switch {
		case lp.Action == ActionRefuse:
			lr.Phase, lr.Message = PhaseFailed, "refused: "+lp.Reason
			failed[lp.Name] = true
		case blockedBy(lp, failed) != "":
			lr.Phase, lr.Message = PhaseBlocked, "waiting for layer "+blockedBy(lp, failed)+", which failed"
			failed[lp.Name] = true
		case ctx.Err() != nil:
			// Stopping: no new change starts; the next run takes it up.
			lr.Phase, lr.Message = PhasePending, "not started: "+context.Cause(ctx).Error()
			failed[lp.Name] = true
		default:
			lr = e.applyLayer(ctx, lp, inv, lr)
			if lr.Phase != PhaseReady && lr.Phase != PhaseRemoved {
				failed[lp.Name] = true
			}
		}
		lr.Writes = e.Requests().Sub(before).Writes
		e.emit(Event{Layer: lr.Name, Action: lr.Action, Phase: lr.Phase, Message: lr.Message})
		res.Layers = append(res.Layers, lr)
	}
	return res, nil
}

func blockedBy(lp *LayerPlan, failed map[string]bool) string {
	for _, dep := range lp.layer.DependsOn {
		if failed[dep] {
			return dep
		}
	}
	return ""
}

func (e *Engine) applyLayer(ctx context.Context, lp *LayerPlan, inv *Inventory, lr LayerResult) LayerResult {
	act := actionFor(lp.Action)
	if lp.Action != ActionUnchanged {
		e.emit(Event{Layer: lp.Name, Action: lp.Action, Phase: act.phase(), Message: lp.Reason})
	}
	started := time.Now()
	// A change once started is finished and recorded even when the caller
	// stops meanwhile (a manager shutting down): cut in the middle, an
	// upgrade would leave its release half-applied and cost another
	// revision on the next run. Only the readiness wait stops with ctx.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Timeout)
	defer cancel()
	err := act.run(work, e, lp)

	after := inv.clone()
	// A plan of LastApplied keeps the policy it was recorded with.
	after.ReportDrift = e.opts.ReportDrift || lp.reportDrift
	switch lp.Action {
	case ActionRemove:
		if err == nil {
			after.remove(lp.Name)
		}
	case ActionUnchanged:
		if lp.catchUp {
			after.put(lp.inventoryLayer())
		}
	case ActionInstall, ActionUpgrade:
		rec := lp.inventoryLayer()
		if err != nil {
			// Recorded, so a later run upgrades or removes what was half-applied.
			rec.Digest = "failed"
		}
		after.put(rec)
	}
	if werr := e.writeInventory(work, inv, after); werr != nil && err == nil {
		err = werr
	}
	*inv = *after

	if err != nil {
		lr.Phase, lr.Message = PhaseFailed, firstLine(err.Error())
		return lr
	}
	if lp.Action == ActionRemove {
		lr.Phase, lr.Message = PhaseRemoved, fmt.Sprintf("removed in %s", time.Since(started).Round(100*time.Millisecond))
		return lr
	}
	lr.Repaired = lp.repaired
	if len(lp.drifted) > 0 {
		// Objects left drifted (missing ones too) need not become Ready.
		lr.Phase, lr.Drifted, lr.Message = PhaseDrifted, lp.drifted, "drift reported, not repaired: "+strings.Join(lp.drifted, ", ")
		return lr
	}
	notes, err := e.waitReady(ctx, lp)
	if err != nil {
		lr.Phase, lr.Message = PhaseFailed, err.Error()
		return lr
	}
	lr.Phase = PhaseReady
	if lp.partial != nil {
		// The components that could deploy did; the layer is not whole.
		lr.Phase, lr.Message = PhaseFailed, "deployed what could be; "+strings.ReplaceAll(lp.partial.Error(), "\n", "; ")
		return lr
	}
	switch {
	case lp.Action == ActionUnchanged && len(lp.repaired) > 0:
		lr.Message = "repaired drift: " + strings.Join(lp.repaired, ", ")
	case lp.Action != ActionUnchanged:
		lr.Message = fmt.Sprintf("%s in %s", lp.Action, time.Since(started).Round(100*time.Millisecond))
	}
	if len(notes) > 0 {
		lr.Message = strings.TrimPrefix(lr.Message+"; "+strings.Join(notes, "; "), "; ")
	}
	return lr
}

func firstLine(s string) string {
	if i := strings.Index(s, "\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func (lp *LayerPlan) inventoryLayer() InventoryLayer {
	l := lp.layer
	return InventoryLayer{
		Name: l.Name, Profile: l.Profile, ProfileVersion: l.ProfileVersion, Kind: string(l.Kind),
		Source: string(l.Source), Package: l.Package, Version: l.Version,
		ReleaseName: l.ReleaseName, Namespace: l.Namespace, Digest: lp.digest, PackDigest: l.PackDigest,
		Values: l.Redacted().Values,
	}
}

func (inv *Inventory) clone() *Inventory {
	c := &Inventory{Stack: inv.Stack, ReportDrift: inv.ReportDrift, Layers: append([]InventoryLayer(nil), inv.Layers...)}
	return c
}

func (inv *Inventory) put(l InventoryLayer) {
	for i := range inv.Layers {
		if inv.Layers[i].Name == l.Name {
			inv.Layers[i] = l
			return
		}
	}
	inv.Layers = append(inv.Layers, l)
}

func (inv *Inventory) remove(name string) {
	for i := range inv.Layers {
		if inv.Layers[i].Name == name {
			inv.Layers = append(inv.Layers[:i], inv.Layers[i+1:]...)
			return
		}
	}
}
