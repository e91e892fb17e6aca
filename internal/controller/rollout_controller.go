package controller

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/rollout"
	"strata.dev/strata/internal/stack"
)

// RolloutReconciler moves each profile version that has a roll-out policy
// through the fleet: it reads the clusters that would run the version and
// writes, in the version's status, which of them may (the cluster
// controller obeys it), which failed, and the roll-out's phase.
type RolloutReconciler struct {
	client.Client
	Recorder events.EventRecorder
}

// Reconcile takes one step of a profile version's roll-out.
func (r *RolloutReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1.ClusterProfile{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if p.Spec.Rollout == nil || p.Spec.Draft {
		return ctrl.Result{}, nil // a draft rolls out once published
	}
	members, err := r.members(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := p.Status.Rollout
	st, next := rollout.Step(rollout.Input{
		Version: p.Spec.Version, Policy: *p.Spec.Rollout, Status: before,
		Members: members, Annotations: p.Annotations, Now: time.Now(),
	})
	if rollout.Finished(st.Phase) {
		old, err := r.superseded(ctx, p)
		if err != nil {
			return ctrl.Result{}, err
		}
		if old {
			rollout.Compact(&st)
		}
	}
	if before == nil || !equality.Semantic.DeepEqual(*before, st) {
		p.Status.Rollout = &st
		if err := r.Status().Update(ctx, p); apierrors.IsConflict(err) {
			// Read from a cache behind our last write: step again on the
			// stored status.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		} else if err != nil {
			return ctrl.Result{}, err
		}
		// Told once the step is stored, so a step redone after a conflict
		// does not tell it twice.
		r.record(p, before, &st)
		observeRollout(p, &st)
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// KeptRollouts is how many of a profile's newest finished roll-outs (in
// one namespace) keep each cluster's state and times; older ones keep
// counts per wave.
const KeptRollouts = 5

// superseded says whether KeptRollouts newer versions of the profile, in
// its namespace, have finished roll-outs of their own.
func (r *RolloutReconciler) superseded(ctx context.Context, p *v1.ClusterProfile) (bool, error) {
	mine, err := semver.NewVersion(p.Spec.Version)
	if err != nil {
		return false, nil
	}
	var list v1.ClusterProfileList
	if err := r.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return false, err
	}
	newer := 0
	for _, o := range list.Items {
		if o.Spec.Name != p.Spec.Name || o.Status.Rollout == nil || !rollout.Finished(o.Status.Rollout.Phase) {
			continue
		}
		if v, err := semver.NewVersion(o.Spec.Version); err == nil && v.GreaterThan(mine) {
			newer++
		}
	}
	return newer >= KeptRollouts, nil
}

// members are the clusters that would run this version were it not for
// the roll-out: they attach the profile, and it is the version their
// attachment picks among those visible to their project (a version they
// rejected still counts, so they stay listed as rolled back).
func (r *RolloutReconciler) members(ctx context.Context, p *v1.ClusterProfile) ([]rollout.Member, error) {
	opts := []client.ListOption{client.MatchingFields{profileNameIndex: p.Spec.Name}}
	if p.Namespace != SharedNamespace {
		opts = append(opts, client.InNamespace(p.Namespace))
	}
	var clusters v1.ClusterList
	if err := r.List(ctx, &clusters, opts...); err != nil {
		return nil, err
	}
	versions := map[string][]profile.Profile{} // by namespace
	var out []rollout.Member
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		visible, ok := versions[c.Namespace]
		if !ok {
			var err error
			if visible, err = r.versionsFor(ctx, c.Namespace, p.Spec.Name); err != nil {
				return nil, err
			}
			versions[c.Namespace] = visible
		}
		if !r.picks(c, visible, p) {
			continue
		}
		m := rollout.Member{Namespace: c.Namespace, Name: c.Name, Labels: c.Labels, AwaitingApproval: c.Status.PendingPlan != nil}
		for _, s := range c.Status.Profiles {
			if s.Name == p.Spec.Name {
				m.Running, m.LastGood, m.Rejected = s.Version, s.LastGood, slices.Contains(s.Rejected, p.Spec.Version)
			}
		}
		m.Ready = c.Status.Phase == v1.ClusterReady && c.Status.ObservedGeneration == c.Generation && c.Status.PendingPlan == nil
		if cond := apimeta.FindStatusCondition(c.Status.Conditions, v1.ConditionReady); cond != nil && !m.Ready {
			m.Problem = cond.Message
		}
		if cond := apimeta.FindStatusCondition(c.Status.Conditions, v1.ConditionStalled); cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == "ClusterUnreachable" {
			m.Unreachable, m.Problem = true, cond.Message
		}
		if c.Spec.Mode == v1.ModeAgent && apimeta.IsStatusConditionFalse(c.Status.Conditions, v1.ConditionAgentConnected) {
			m.Unreachable = true
		}
		if m.Ready && m.Running == p.Spec.Version {
			m.Ready, m.Problem = gatesPass(c, p)
		}
		out = append(out, m)
	}
	return out, nil
}

// gatesPass says whether a cluster passed every health check of the
// version, as its last reconcile saw them; a check not reported yet has
// not passed.
func gatesPass(c *v1.Cluster, p *v1.ClusterProfile) (bool, string) {
	var problems []string
	for _, hc := range p.Spec.Rollout.HealthChecks {
		i := slices.IndexFunc(c.Status.HealthChecks, func(r v1.HealthCheckResult) bool {
			return r.Profile == p.Spec.Name && r.Version == p.Spec.Version && r.Name == hc.Name
		})
		switch {
		case i < 0:
			problems = append(problems, "health check "+hc.Name+" not run yet")
		case !c.Status.HealthChecks[i].Healthy:
			problems = append(problems, "health check "+hc.Name+": "+c.Status.HealthChecks[i].Message)
		}
	}
	return len(problems) == 0, strings.Join(problems, "; ")
}

// picks says whether the cluster's attachment picks version p among the
// versions visible to it, leaving out the others it rejected.
func (r *RolloutReconciler) picks(c *v1.Cluster, visible []profile.Profile, p *v1.ClusterProfile) bool {
	for _, a := range c.Spec.Profiles {
		if a.Name != p.Spec.Name {
			continue
		}
		candidates := slices.DeleteFunc(slices.Clone(visible), func(o profile.Profile) bool {
			return o.UID != p.UID && rollout.Decide(o.ClusterProfile, c.Namespace, c.Name).Reject
		})
		got, ok := stack.FindProfile(candidates, a.Name, a.Version)
		return ok && got.UID == p.UID
	}
	return false
}

// versionsFor lists the versions of a profile a project sees: its own and
// the shared ones (its own first, hiding a shared one of the same version).
func (r *RolloutReconciler) versionsFor(ctx context.Context, namespace, name string) ([]profile.Profile, error) {
	seen := map[string]bool{}
	var out []profile.Profile
	for _, ns := range slices.Compact([]string{namespace, SharedNamespace}) {
		var list v1.ClusterProfileList
		if err := r.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for i := range list.Items {
			o := &list.Items[i]
			if o.Spec.Name == name && !seen[o.Spec.Version] {
				seen[o.Spec.Version] = true
				out = append(out, profile.Profile{ClusterProfile: o})
			}
		}
	}
	return out, nil
}

// record tells, as events on the profile version, what changed: clusters
// starting, failing and rolled back, and the phase.
func (r *RolloutReconciler) record(p *v1.ClusterProfile, before, after *v1.RolloutStatus) {
	was := map[string]v1.RolloutClusterState{}
	if before != nil {
		for _, w := range before.Waves {
			for _, c := range w.Clusters {
				was[c.Namespace+"/"+c.Name] = c.State
			}
		}
	}
	for _, w := range after.Waves {
		for _, c := range w.Clusters {
			key := c.Namespace + "/" + c.Name
			if was[key] == c.State {
				continue
			}
			switch c.State {
			case v1.ClusterRolloutUpdating:
				r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, "ClusterUpdating", "Rollout", "wave %s: cluster %s moves to %s", w.Name, key, p.Spec.Version)
			case v1.ClusterRolloutFailed:
				r.Recorder.Eventf(p, nil, corev1.EventTypeWarning, "ClusterFailed", "Rollout", "wave %s: cluster %s failed %s: %s", w.Name, key, p.Spec.Version, c.Message)
			case v1.ClusterRolloutRolledBack:
				rollbacks.Inc()
				r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, "ClusterRolledBack", "Rollout", "wave %s: cluster %s is back on %s", w.Name, key, orNothing(c.From))
			}
		}
	}
	if before == nil || before.Phase != after.Phase {
		kind := corev1.EventTypeNormal
		if after.Phase == v1.RolloutHalted || after.Phase == v1.RolloutRolledBack {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(p, nil, kind, "Rollout"+string(after.Phase), "Rollout", "roll-out of %s %s: %s", p.Spec.Name, p.Spec.Version, orNothing(after.Reason))
	}
}

func orNothing(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SetupWithManager watches profile versions with a roll-out and the
// clusters that attach them (a cluster's status is what moves a roll-out).
func (r *RolloutReconciler) SetupWithManager(mgr ctrl.Manager) error {
	hasRollout := predicate.NewPredicateFuncs(func(o client.Object) bool {
		p, ok := o.(*v1.ClusterProfile)
		return ok && p.Spec.Rollout != nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.ClusterProfile{}, builder.WithPredicates(hasRollout, predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&v1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.rolloutsOf)).
		Named("rollout").
		Complete(r)
}

// rolloutsOf maps a cluster to the versions with a roll-out of the
// profiles it attaches, in its project and the shared namespace.
func (r *RolloutReconciler) rolloutsOf(ctx context.Context, o client.Object) []ctrl.Request {
	c, ok := o.(*v1.Cluster)
	if !ok {
		return nil
	}
	var reqs []ctrl.Request
	for _, ns := range slices.Compact([]string{c.Namespace, SharedNamespace}) {
		var list v1.ClusterProfileList
		if err := r.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.Spec.Rollout == nil {
				continue
			}
			for _, a := range c.Spec.Profiles {
				if a.Name == p.Spec.Name {
					reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
					break
				}
			}
		}
	}
	return reqs
}
