package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/rollout"
)

// inflight is a change being applied to one cluster. What the roll-outs
// decide meanwhile reaches it (a version that failed this cluster is not
// waited for any longer), and its layers' progress shows in the status as
// it happens.
type inflight struct {
	namespace, name string
	// targets are the profile versions the change moves the cluster to,
	// by profile name.
	targets map[string]string
	cancel  context.CancelCauseFunc
	// progress is told each step of the engine on this cluster.
	progress func(engine.Event)
}

// startApply registers a change about to be applied and returns the
// context to apply it in: it ends at the progress deadline of a roll-out
// that is updating this cluster, or when such a roll-out fails the
// cluster. done must be called once the apply returns.
func (r *ClusterReconciler) startApply(ctx context.Context, c *v1.Cluster, resolved *resolution, progress func(engine.Event)) (context.Context, func()) {
	f := &inflight{namespace: c.Namespace, name: c.Name, targets: map[string]string{}, progress: progress}
	for _, ps := range resolved.profiles {
		if ps.Version != "" {
			f.targets[ps.Name] = ps.Version
		}
	}
	// The earliest deadline of the roll-outs updating this cluster bounds
	// the whole apply.
	var deadline time.Time
	var late error
	for _, p := range resolved.visible {
		if f.targets[p.Spec.Name] != p.Spec.Version {
			continue
		}
		if at, within, ok := rollout.DeadlineOf(p.ClusterProfile, c.Namespace, c.Name); ok && (deadline.IsZero() || at.Before(deadline)) {
			deadline = at
			late = fmt.Errorf("the roll-out of %s %s gives each cluster %s to be healthy, and that time is up", p.Spec.Name, p.Spec.Version, within)
		}
	}
	stopDeadline := func() {}
	if !deadline.IsZero() {
		ctx, stopDeadline = context.WithDeadlineCause(ctx, deadline, late)
	}
	ctx, f.cancel = context.WithCancelCause(ctx)
	r.applying.Store(c.UID, f)
	return ctx, func() {
		r.applying.Delete(c.UID)
		f.cancel(context.Canceled)
		stopDeadline()
	}
}

// stopFailedApplies cuts short the applies of this profile version on the
// clusters its roll-out has just failed (deadline passed, a gate failed,
// the roll-out aborted): their roll-back starts at once, not when the
// layers' own timeout ends.
func (r *ClusterReconciler) stopFailedApplies(p *v1.ClusterProfile) {
	if p.Spec.Rollout == nil || p.Status.Rollout == nil {
		return
	}
	r.applying.Range(func(_, v any) bool {
		f := v.(*inflight)
		if f.targets[p.Spec.Name] != p.Spec.Version {
			return true
		}
		if s := rollout.StateOf(p, f.namespace, f.name); s == v1.ClusterRolloutFailed || s == v1.ClusterRolloutRolledBack {
			f.cancel(fmt.Errorf("the roll-out of %s %s failed this cluster", p.Spec.Name, p.Spec.Version))
		}
		return true
	})
}

// tellProgress passes an engine step on to the change in flight on the
// cluster, if there is one.
func (r *ClusterReconciler) tellProgress(c *v1.Cluster, ev engine.Event) {
	if f, ok := r.applying.Load(c.UID); ok {
		f.(*inflight).progress(ev)
	}
}

// announceAfter is how long a change runs before its status says it is
// under way, when the reconciler does not say.
const announceAfter = 2 * time.Second

// announce sets, before a change starts, what the cluster is about to do:
// Reconciling with the plan's summary, the versions being applied, the
// layers to change Pending. Ready is not claimed while the cluster runs
// neither the old versions nor the new ones whole. It returns what keeps
// each layer's progress in the status from then on, and what must be
// called once the apply has returned, before the status is touched again.
//
// Nothing is written for the first AnnounceAfter: a change done by then is
// written once, with its outcome. A fleet-wide change then costs the API
// server one status write per cluster instead of two; that write is most
// of what ten thousand agents cost it. A longer change is written when the
// time is up, and then at each layer that starts.
func (r *ClusterReconciler) announce(ctx context.Context, c *v1.Cluster, plan *engine.Plan, profiles []v1.ProfileStatus) (progress func(engine.Event), stop func()) {
	previous := map[string]v1.LayerStatus{}
	for _, l := range c.Status.Layers {
		previous[l.Name] = l
	}
	var layers []v1.LayerStatus
	var removed []v1.LayerStatus
	for _, lp := range plan.Layers {
		ls, ok := previous[lp.Name]
		if !ok {
			ls = v1.LayerStatus{Name: lp.Name}
		}
		if l, found := lp.Layer(); found {
			ls.Profile, ls.ProfileVersion, ls.Source, ls.Package, ls.Version, ls.Digest = l.Profile, l.ProfileVersion, string(l.Source), l.Package, l.Version, l.PackDigest
		}
		if lp.Action != engine.ActionUnchanged {
			ls.Phase, ls.Message = string(engine.PhasePending), strings.TrimSpace(fmt.Sprintf("to %s: %s", lp.Action, lp.Reason))
		}
		if lp.Action == engine.ActionRemove {
			removed = append(removed, ls)
			continue
		}
		layers = append(layers, ls)
	}
	c.Status.Layers = append(layers, removed...)
	c.Status.Profiles = profiles
	c.Status.Phase = v1.ClusterReconciling
	c.Status.ObservedGeneration = c.Generation
	summary := fmt.Sprintf("%d of %d layers to change", plan.Changes(), len(plan.Layers))
	setCondition(c, v1.ConditionReconciling, metav1.ConditionTrue, "Applying", summary+" ("+profileVersions(profiles)+")")
	setCondition(c, v1.ConditionReady, metav1.ConditionUnknown, "Reconciling", "applying "+profileVersions(profiles)+": "+summary)
	apimeta.RemoveStatusCondition(&c.Status.Conditions, v1.ConditionStalled)

	// The timer writes from its own goroutine while the apply reports
	// progress from the reconcile's: mu keeps them to one at a time. Each
	// write sends a copy, since the reconcile's goroutine reads c (its
	// events name it) while the timer's write would decode into it.
	var mu sync.Mutex
	due, stopped := false, false
	resourceVersion := c.ResourceVersion
	write := func() {
		w := c.DeepCopy()
		w.ResourceVersion = resourceVersion
		r.writeProgress(ctx, w)
		resourceVersion = w.ResourceVersion
	}
	after := r.AnnounceAfter
	if after <= 0 {
		after = announceAfter
	}
	timer := time.AfterFunc(after, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			due = true
			write()
		}
	})
	progress = func(ev engine.Event) {
		mu.Lock()
		defer mu.Unlock()
		for i := range c.Status.Layers {
			l := &c.Status.Layers[i]
			if l.Name != ev.Layer {
				continue
			}
			l.Phase, l.Message = string(ev.Phase), ev.Message
			// A layer starting is news; one ending shows with the next
			// start or the reconcile's own write at the end.
			if due && (ev.Phase == engine.PhaseInstalling || ev.Phase == engine.PhaseUpgrading || ev.Phase == engine.PhaseRemoving) {
				write()
			}
			return
		}
	}
	stop = func() {
		timer.Stop()
		// A write the timer has begun ends before the reconcile goes on,
		// and the reconcile's own write follows the last one.
		mu.Lock()
		stopped = true
		c.ResourceVersion = resourceVersion
		mu.Unlock()
	}
	return progress, stop
}

// writeProgress writes the status of a change under way. A failed write
// stops nothing: the status at the end is written as always.
func (r *ClusterReconciler) writeProgress(ctx context.Context, c *v1.Cluster) {
	if r.Agent != nil {
		r.stampAgent(c, false)
	}
	if err := r.writeStatus(ctx, c); err != nil {
		log.FromContext(ctx).Info("progress not written", "error", err.Error())
	}
}

func profileVersions(ps []v1.ProfileStatus) string {
	var parts []string
	for _, p := range ps {
		if p.Version != "" {
			parts = append(parts, p.Name+" "+p.Version)
		}
	}
	return strings.Join(parts, ", ")
}
