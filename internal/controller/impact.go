package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/preview"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/stack"
)

// maxImpactClusters bounds the clusters a draft's status lists; the
// summary counts them all. Every agent watches ClusterProfiles, so each
// write of a draft's status reaches every agent-mode cluster: with 1,000
// clusters listed (about 300 KB) that fan-out slowed a roll-out on the
// same plane 1.7 to 4 times (BenchmarkFleetWithADraft).
const maxImpactClusters = 200

// impactInterval is the least time between two computations of one
// draft's impact: a fleet whose clusters report often would otherwise
// have it computed on every report.
const impactInterval = 10 * time.Second

// impactShare bounds the time a draft's impact takes to one part in this
// many of the manager's time: a computation that took 5 s (1,000
// clusters) waits 50 s before the next, so the clusters' own reconciles
// keep the processor (BenchmarkFleetWithADraft).
const impactShare = 10

// ImpactReconciler keeps each draft profile version's impact on the
// fleet in its status: the plan of every cluster that would move to it,
// or why it would refuse it. It reads only what the manager knows; it
// runs apart from the cluster reconcilers so that previewing a large
// fleet never delays them.
type ImpactReconciler struct {
	client.Client
	Packs      stack.Packs
	Registries *registry.Set
	// Refusals, when set, checks a draft's changed layers against what
	// the manager knows of a cluster it is connected to (the APIs it
	// serves); a ClusterReconciler's.
	Refusals func(ctx context.Context, c *v1.Cluster, st *stack.Stack, visible []profile.Profile, layers []string) (map[string]string, error)

	mu sync.Mutex
	// last is each draft's last computation, written or not.
	last map[types.NamespacedName]computation
}

// computation is when a draft's impact was last computed, and how long it
// took.
type computation struct {
	at   time.Time
	took time.Duration
}

// wait is how long a draft's next computation must wait: impactInterval,
// or impactShare times the last one's duration, from the last one (the
// status's time when this process has computed none yet).
func (r *ImpactReconciler) wait(key types.NamespacedName, stored time.Time) time.Duration {
	r.mu.Lock()
	last := r.last[key]
	r.mu.Unlock()
	if last.at.Before(stored) {
		last.at = stored
	}
	return max(impactInterval, impactShare*last.took) - time.Since(last.at)
}

// Reconcile computes a draft's impact, no sooner than wait allows.
func (r *ImpactReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1.ClusterProfile{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.Spec.Draft {
		r.mu.Lock()
		delete(r.last, req.NamespacedName)
		r.mu.Unlock()
		if p.Status.Impact == nil {
			return ctrl.Result{}, nil
		}
		p.Status.Impact = nil // published: it is no longer a preview
		return ctrl.Result{}, r.Status().Update(ctx, p)
	}
	if im := p.Status.Impact; im != nil && im.ObservedGeneration == p.Generation {
		if wait := r.wait(req.NamespacedName, im.ComputedTime.Time); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	started := time.Now()
	impact, err := r.compute(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.mu.Lock()
	if r.last == nil {
		r.last = map[types.NamespacedName]computation{}
	}
	// Remembered even when nothing is written, so an unchanged impact is
	// not computed again on the next event.
	r.last[req.NamespacedName] = computation{at: started, took: time.Since(started)}
	r.mu.Unlock()
	if before := p.Status.Impact; before != nil && before.ObservedGeneration == impact.ObservedGeneration &&
		before.Summary == impact.Summary && equality.Semantic.DeepEqual(before.Clusters, impact.Clusters) && before.Truncated == impact.Truncated {
		return ctrl.Result{}, nil // nothing new: no write
	}
	p.Status.Impact = impact
	if err := r.Status().Update(ctx, p); apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// compute previews the draft on the clusters that attach its profile: in
// its namespace, or in every namespace for a shared profile.
func (r *ImpactReconciler) compute(ctx context.Context, p *v1.ClusterProfile) (*v1.ImpactStatus, error) {
	opts := []client.ListOption{client.MatchingFields{profileNameIndex: p.Spec.Name}}
	if p.Namespace != SharedNamespace {
		opts = append(opts, client.InNamespace(p.Namespace))
	}
	var list v1.ClusterList
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	visible := map[types.UID][]profile.Profile{}
	var clusters []profile.Cluster
	for i := range list.Items {
		c := &list.Items[i]
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		profiles, err := VisibleProfiles(ctx, r.Client, c)
		if err != nil {
			return nil, err
		}
		// Only the draft the reconcile is for counts as one: a cluster of
		// another project sees its own draft of the same version instead.
		if !slices.ContainsFunc(profiles, func(o profile.Profile) bool { return o.UID == p.UID }) {
			continue
		}
		visible[c.UID] = profiles
		clusters = append(clusters, profile.Cluster{Cluster: c, Source: profile.Source{File: "cluster " + c.Namespace + "/" + c.Name}})
	}
	impact := preview.Compute(p, preview.Fleet{
		Profiles: func(c profile.Cluster) []profile.Profile { return visible[c.UID] },
		Clusters: clusters,
		Packs:    func(c profile.Cluster) stack.Packs { return packsFor(r.Registries, r.Packs, c.Namespace) },
		Facts:    func(c profile.Cluster) stack.Facts { return stack.Facts{KubernetesVersion: c.Status.KubernetesVersion} },
		Unknown: func(c profile.Cluster) string {
			if c.Status.KubernetesVersion == "" {
				return "not known: the manager has not reached this cluster yet"
			}
			return ""
		},
		Refusals: r.refusalsFor(ctx, visible),
	})
	out := &v1.ImpactStatus{ObservedGeneration: p.Generation, ComputedTime: metav1.Now(), Summary: v1.ImpactSummary{
		Change: int32(impact.Summary.Change), Unchanged: int32(impact.Summary.Unchanged),
		Refused: int32(impact.Summary.Refused), Unknown: int32(impact.Summary.Unknown),
	}}
	for i, c := range impact.Clusters {
		if i == maxImpactClusters {
			out.Truncated = true
			break
		}
		ci := v1.ClusterImpact{Namespace: c.Namespace, Name: c.Name, From: c.From, Refused: truncate(c.Refused, 1024), Unknown: c.Unknown}
		for _, l := range c.Layers {
			ci.Layers = append(ci.Layers, v1.LayerImpact{Name: l.Name, Action: l.Action, FromVersion: l.FromVersion, ToVersion: l.ToVersion, ValuesChanged: l.ValuesChanged, Package: l.Package, FromPackage: l.FromPackage})
		}
		out.Clusters = append(out.Clusters, ci)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len(" …")] + " …"
}

// SetupWithManager watches drafts, the clusters that attach their profile
// (when what they attach or run changes, not on every report) and the
// registries (a pack appearing may admit a draft).
func (r *ImpactReconciler) SetupWithManager(mgr ctrl.Manager) error {
	drafts := predicate.NewPredicateFuncs(func(o client.Object) bool {
		p := o.(*v1.ClusterProfile)
		return p.Spec.Draft || p.Status.Impact != nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.ClusterProfile{}, builder.WithPredicates(drafts, predicate.GenerationChangedPredicate{})).
		Watches(&v1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.draftsOf), builder.WithPredicates(clusterRunsOtherwise)).
		Watches(&v1.PackRegistry{}, handler.EnqueueRequestsFromMapFunc(r.allDrafts), builder.WithPredicates(registryChanged)).
		Named("impact").
		Complete(r)
}

// clusterRunsOtherwise lets through a cluster's changes that may change a
// preview: its spec, the versions it runs, its Kubernetes version.
var clusterRunsOtherwise = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		a, b := e.ObjectOld.(*v1.Cluster), e.ObjectNew.(*v1.Cluster)
		return a.Generation != b.Generation || a.Status.KubernetesVersion != b.Status.KubernetesVersion ||
			!equality.Semantic.DeepEqual(a.Status.Profiles, b.Status.Profiles)
	},
}

// refusalsFor checks a cluster's changed layers with Refusals, when set.
func (r *ImpactReconciler) refusalsFor(ctx context.Context, visible map[types.UID][]profile.Profile) func(profile.Cluster, *stack.Stack, []string) (map[string]string, error) {
	if r.Refusals == nil {
		return nil
	}
	return func(c profile.Cluster, st *stack.Stack, layers []string) (map[string]string, error) {
		return r.Refusals(ctx, c.Cluster, st, visible[c.UID], layers)
	}
}

// draftsOf maps a cluster to the drafts it sees of the profiles it
// attaches.
func (r *ImpactReconciler) draftsOf(ctx context.Context, o client.Object) []ctrl.Request {
	visible, err := VisibleProfiles(ctx, r.Client, o.(*v1.Cluster))
	if err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, p := range visible {
		if p.Spec.Draft {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p.ClusterProfile)})
		}
	}
	return reqs
}

// allDrafts lists every draft.
func (r *ImpactReconciler) allDrafts(ctx context.Context, _ client.Object) []ctrl.Request {
	var list v1.ClusterProfileList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, p := range list.Items {
		if p.Spec.Draft {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
		}
	}
	return reqs
}
