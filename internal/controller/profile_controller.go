package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/stack"
)

// InUseFinalizer keeps a profile version while clusters use it.
const InUseFinalizer = "strata.dev/in-use"

// ProfileLabel on a ClusterProfile is its spec.name, set by the manager:
// an agent's cache holds only the versions of the profiles its cluster
// attaches, selected by it.
const ProfileLabel = "strata.dev/profile"

// ConditionInUse on a ClusterProfile says which clusters hold it.
const ConditionInUse = "InUse"

// ConditionValid on a ClusterProfile says whether the profile resolves on
// its own — its rules, packs, presets, macros and pack constraints — with
// the messages of `strata profile validate`.
const ConditionValid = "Valid"

// ProfileReconciler validates each profile version and protects those that
// clusters use: deleting one waits, with a condition and an event naming
// the clusters, until no cluster uses it.
type ProfileReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// Packs the profiles' layers use: the folders given to the manager.
	Packs stack.Packs
	// Registries, when set, are searched before Packs.
	Registries *registry.Set
}

// Reconcile adds the finalizer and the Valid condition, and on deletion
// removes the finalizer once unused.
func (r *ProfileReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1.ClusterProfile{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if p.DeletionTimestamp.IsZero() {
		labelled := p.Labels[ProfileLabel] == p.Spec.Name
		if !labelled {
			if p.Labels == nil {
				p.Labels = map[string]string{}
			}
			p.Labels[ProfileLabel] = p.Spec.Name
		}
		if controllerutil.AddFinalizer(p, InUseFinalizer) || !labelled {
			return ctrl.Result{}, r.Update(ctx, p)
		}
		return ctrl.Result{}, r.validate(ctx, p)
	}
	if !controllerutil.ContainsFinalizer(p, InUseFinalizer) {
		return ctrl.Result{}, nil
	}
	users, err := r.clustersUsing(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(users) > 0 {
		msg := fmt.Sprintf("profile %s %s is used by clusters %s: move them to another version before deleting it", p.Spec.Name, p.Spec.Version, strings.Join(users, ", "))
		before := apimeta.FindStatusCondition(p.Status.Conditions, ConditionInUse)
		if before == nil || before.Message != msg {
			apimeta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: ConditionInUse, Status: metav1.ConditionTrue, Reason: "UsedByClusters", Message: msg, ObservedGeneration: p.Generation})
			r.Recorder.Eventf(p, nil, corev1.EventTypeWarning, "DeletionBlocked", "Delete", "%s", msg)
			return ctrl.Result{}, r.Status().Update(ctx, p)
		}
		return ctrl.Result{}, nil // a cluster change requeues this profile
	}
	controllerutil.RemoveFinalizer(p, InUseFinalizer)
	return ctrl.Result{}, r.Update(ctx, p)
}

// WarningPrefix starts each warning line of a Valid condition's message.
const WarningPrefix = "warning: "

// maxConditionMessage is the API's limit on a condition message.
const maxConditionMessage = 32768

// validate resolves the profile on its own, as `strata profile validate`
// does, and writes the outcome when it changed.
func (r *ProfileReconciler) validate(ctx context.Context, p *v1.ClusterProfile) error {
	src := profile.Source{File: "clusterprofile " + p.Namespace + "/" + p.Name}
	cond := metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: "Resolved", Message: "the profile resolves with the packs the manager has", ObservedGeneration: p.Generation}
	st, err := stack.ResolveProfile(profile.Profile{ClusterProfile: p, Source: src}, packsFor(r.Registries, r.Packs, p.Namespace), stack.Facts{})
	switch {
	case err != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Invalid", err.Error()
	case len(st.Warnings) > 0:
		// Warnings never make a profile invalid; they ride along, one per line.
		cond.Reason = "ResolvedWithWarnings"
		for _, w := range st.Warnings {
			cond.Message += "\n" + WarningPrefix + w.Error()
		}
	}
	if len(cond.Message) > maxConditionMessage {
		cond.Message = cond.Message[:maxConditionMessage-len(" …")] + " …"
	}
	before := apimeta.FindStatusCondition(p.Status.Conditions, ConditionValid)
	if before != nil && before.Status == cond.Status && before.Message == cond.Message && p.Status.ObservedGeneration == p.Generation {
		return nil
	}
	if cond.Status == metav1.ConditionFalse {
		r.Recorder.Eventf(p, nil, corev1.EventTypeWarning, "Invalid", "Validate", "%s", cond.Message)
	}
	apimeta.SetStatusCondition(&p.Status.Conditions, cond)
	p.Status.ObservedGeneration = p.Generation
	return r.Status().Update(ctx, p)
}

// clustersUsing lists namespace/name of the clusters that attach p: in its
// namespace, or anywhere for a profile of the shared namespace.
func (r *ProfileReconciler) clustersUsing(ctx context.Context, p *v1.ClusterProfile) ([]string, error) {
	var list v1.ClusterList
	opts := []client.ListOption{client.MatchingFields{profileIndex: p.Name}}
	if p.Namespace != SharedNamespace {
		opts = append(opts, client.InNamespace(p.Namespace))
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	var users []string
	for _, c := range list.Items {
		// A shared profile does not serve a cluster whose own project has
		// a profile of the same name and version.
		if p.Namespace == SharedNamespace && c.Namespace != SharedNamespace {
			own := &v1.ClusterProfile{}
			if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: p.Name}, own); err == nil {
				continue
			}
		}
		users = append(users, c.Namespace+"/"+c.Name)
	}
	sort.Strings(users)
	return users, nil
}

// SetupWithManager watches profiles, and clusters, whose changes may
// release a profile waiting to be deleted. It relies on the cluster index
// that ClusterReconciler.SetupWithManager registers.
func (r *ProfileReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.ClusterProfile{}).
		Watches(&v1.Cluster{}, handler.EnqueueRequestsFromMapFunc(profilesOfCluster)).
		Watches(&v1.PackRegistry{}, handler.EnqueueRequestsFromMapFunc(servedBy(r.Client, func() client.ObjectList { return &v1.ClusterProfileList{} })), builder.WithPredicates(registryChanged)).
		Named("clusterprofile").
		Complete(r)
}

// profilesOfCluster maps a cluster to the profile versions it attaches, in
// its namespace and the shared one.
func profilesOfCluster(_ context.Context, o client.Object) []ctrl.Request {
	c := o.(*v1.Cluster)
	var reqs []ctrl.Request
	for _, name := range indexProfiles(c) {
		reqs = append(reqs,
			ctrl.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: name}},
			ctrl.Request{NamespacedName: types.NamespacedName{Namespace: SharedNamespace, Name: name}})
	}
	return reqs
}
