// Package controller holds the management plane's reconcilers: clusters
// follow the profiles attached to them through the same engine that
// `strata deploy` uses.
package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

// Finalizer keeps a Cluster until its layers are removed from the workload
// cluster.
const Finalizer = "strata.dev/layers"

// OrphanAnnotation, set to "true" on a Cluster, leaves its layers running
// on the workload cluster when the Cluster is deleted.
const OrphanAnnotation = "strata.dev/orphan"

// SharedNamespace holds profiles that serve every project.
const SharedNamespace = "strata-system"

// ClusterReconciler converges each Cluster to the stack of its profiles.
type ClusterReconciler struct {
	client.Client
	// Packs the profiles' layers use.
	Packs stack.Packs
	// LayerTimeout bounds each layer's readiness wait.
	LayerTimeout time.Duration
	// Resync is how often a Ready cluster is checked for drift.
	Resync   time.Duration
	Recorder events.EventRecorder
}

// Reconcile resolves, plans and applies one Cluster, and writes its status
// once at the end.
func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	c := &v1.Cluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, c)
	}
	if controllerutil.AddFinalizer(c, Finalizer) {
		if err := r.Update(ctx, c); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := c.Status.DeepCopy()
	defer func() {
		observe(c)
		c.Status.ObservedGeneration = c.Generation
		if !equalStatus(before, &c.Status) {
			if perr := r.Status().Update(ctx, c); perr != nil && err == nil {
				err = perr
			}
		}
	}()
	return r.reconcileNormal(ctx, c)
}

func (r *ClusterReconciler) reconcileNormal(ctx context.Context, c *v1.Cluster) (ctrl.Result, error) {
	e, kv, err := r.engineFor(ctx, c)
	if err != nil {
		return r.stalled(c, "ClusterUnreachable", err), nil
	}
	c.Status.KubernetesVersion = kv
	st, err := r.resolve(ctx, c, kv)
	if err != nil {
		// An invalid change applies nothing; the message is the offline CLI's.
		return r.stalled(c, "InvalidStack", err), nil
	}
	plan, err := e.Plan(ctx, st)
	if err != nil {
		return r.stalled(c, "PlanFailed", err), nil
	}
	if plan.Changes() > 0 && c.Spec.UpdatePolicy == v1.UpdateManual && c.Spec.ApprovedPlan != plan.Digest() {
		return r.awaitApproval(ctx, c, e, st, plan)
	}
	setCondition(c, v1.ConditionReconciling, metav1.ConditionTrue, "Applying", fmt.Sprintf("%d of %d layers to change", plan.Changes(), len(plan.Layers)))
	res, err := e.Apply(ctx, plan)
	if err != nil {
		return r.stalled(c, "ApplyFailed", err), nil
	}
	c.Status.PendingPlan = nil
	setCondition(c, v1.ConditionUpdatesAvailable, metav1.ConditionFalse, "UpToDate", "the cluster runs the latest plan of its profiles")
	if r.settle(c, st, res, nil) {
		return ctrl.Result{RequeueAfter: r.Resync / 5}, nil
	}
	return ctrl.Result{RequeueAfter: r.Resync}, nil
}

// settle writes what an apply left — the layers, drift, the Reconciling and
// Ready conditions and the phase — and reports whether a layer failed.
// With a pending plan, the changes it holds are waiting, not applied.
func (r *ClusterReconciler) settle(c *v1.Cluster, st *stack.Stack, res *engine.Result, pending *engine.Plan) (failed bool) {
	r.recordLayers(c, st, res, pending)
	r.recordDrift(c, res)
	apimeta.RemoveStatusCondition(&c.Status.Conditions, v1.ConditionStalled)
	reason, message, ready := "Applied", "the cluster runs its stack", fmt.Sprintf("%d layers Ready", len(st.Layers))
	if pending != nil {
		reason, message, ready = "AwaitingApproval", "changes wait for approval", "the running layers are Ready; updates wait for approval"
	}
	setCondition(c, v1.ConditionReconciling, metav1.ConditionFalse, reason, message)
	if res.Failed() {
		c.Status.Phase = v1.ClusterFailed
		setCondition(c, v1.ConditionReady, metav1.ConditionFalse, "LayersFailed", failedLayers(res))
		return true
	}
	c.Status.Phase = v1.ClusterReady
	setCondition(c, v1.ConditionReady, metav1.ConditionTrue, "LayersReady", ready)
	return false
}

// awaitApproval holds a Manual cluster's changes: the plan waits in the
// status, exactly as it will be applied, while the unchanged layers are
// still checked and their drift repaired.
func (r *ClusterReconciler) awaitApproval(ctx context.Context, c *v1.Cluster, e *engine.Engine, st *stack.Stack, plan *engine.Plan) (ctrl.Result, error) {
	pending := pendingPlan(plan)
	if c.Status.PendingPlan == nil || c.Status.PendingPlan.Digest != pending.Digest {
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "UpdatesAvailable", "Plan", "%s; approve with `strata cluster approve %s -n %s`", pending.Summary, c.Name, c.Namespace)
	}
	c.Status.PendingPlan = pending
	setCondition(c, v1.ConditionUpdatesAvailable, metav1.ConditionTrue, "AwaitingApproval", pending.Summary)
	res, err := e.Apply(ctx, plan.Unchanged())
	if err != nil {
		return r.stalled(c, "ApplyFailed", err), nil
	}
	r.settle(c, st, res, plan)
	return ctrl.Result{RequeueAfter: r.Resync}, nil
}

func pendingPlan(plan *engine.Plan) *v1.PendingPlan {
	counts := map[engine.Action]int{}
	p := &v1.PendingPlan{Digest: plan.Digest()}
	for _, l := range plan.Layers {
		if l.Action == engine.ActionUnchanged {
			continue
		}
		counts[l.Action]++
		p.Layers = append(p.Layers, v1.PlannedLayer{
			Name: l.Name, Action: string(l.Action), FromVersion: l.FromVersion, ToVersion: l.ToVersion,
			Reason: l.Reason, ValuesDiff: l.ValuesDiff,
		})
	}
	var parts []string
	for _, a := range []engine.Action{engine.ActionInstall, engine.ActionUpgrade, engine.ActionRemove, engine.ActionRefuse} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", counts[a], a))
		}
	}
	p.Summary = strings.Join(parts, ", ")
	return p
}

// stalled reports a reconcile that cannot go on until something changes,
// and retries later with the controller's backoff capped by Resync.
func (r *ClusterReconciler) stalled(c *v1.Cluster, reason string, err error) ctrl.Result {
	c.Status.Phase = v1.ClusterFailed
	setCondition(c, v1.ConditionStalled, metav1.ConditionTrue, reason, err.Error())
	setCondition(c, v1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
	setCondition(c, v1.ConditionReconciling, metav1.ConditionFalse, reason, "waiting for a change or the next retry")
	r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", err.Error())
	return ctrl.Result{RequeueAfter: 30 * time.Second}
}

func (r *ClusterReconciler) reconcileDelete(ctx context.Context, c *v1.Cluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, Finalizer) {
		return ctrl.Result{}, nil
	}
	if c.Annotations[OrphanAnnotation] != "true" {
		e, _, err := r.engineFor(ctx, c)
		if err != nil {
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "ClusterUnreachable", "Delete", "%s", err.Error())
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		plan, err := e.Plan(ctx, &stack.Stack{Cluster: c.Name})
		if err != nil {
			return ctrl.Result{}, err
		}
		res, err := e.Apply(ctx, plan)
		if err != nil {
			return ctrl.Result{}, err
		}
		if res.Failed() {
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "RemoveFailed", "Delete", "%s", failedLayers(res))
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		for _, l := range res.Layers {
			r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "LayerRemoved", "Delete", "layer %s removed", l.Name)
		}
	}
	controllerutil.RemoveFinalizer(c, Finalizer)
	forget(c)
	return ctrl.Result{}, r.Update(ctx, c)
}

// engineFor connects an engine to the cluster's workload cluster. The
// kubeconfig stays in memory; it is never logged or written to status.
func (r *ClusterReconciler) engineFor(ctx context.Context, c *v1.Cluster) (*engine.Engine, string, error) {
	ref := c.Spec.KubeconfigSecretRef
	if ref == nil {
		return nil, "", errors.New("spec.kubeconfigSecretRef is not set: an imported cluster is reached through a kubeconfig Secret")
	}
	key := ref.Key
	if key == "" {
		key = "kubeconfig"
	}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, secret); err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s: %w", c.Namespace, ref.Name, err)
	}
	data, ok := secret.Data[key]
	if !ok {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s has no key %q", c.Namespace, ref.Name, key)
	}
	cfg, err := restConfig(data)
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s key %q is not a usable kubeconfig", c.Namespace, ref.Name, key)
	}
	logger := log.FromContext(ctx)
	e, err := engine.New(engine.Options{
		RESTConfig: cfg, Timeout: r.LayerTimeout, ReportDrift: c.Spec.DriftPolicy == v1.DriftReport,
		Events: func(ev engine.Event) {
			logger.Info("layer", "layer", ev.Layer, "action", ev.Action, "phase", ev.Phase)
			if ev.Phase == engine.PhaseFailed {
				r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "LayerFailed", string(ev.Action), "layer %s: %s", ev.Layer, ev.Message)
			} else if ev.Action != engine.ActionUnchanged {
				r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "Layer"+string(ev.Phase), string(ev.Action), "layer %s: %s %s", ev.Layer, ev.Action, ev.Message)
			}
		},
	})
	if err != nil {
		return nil, "", err
	}
	kv, err := e.KubernetesVersion()
	if err != nil {
		return nil, "", err
	}
	return e, kv, nil
}

func restConfig(kubeconfig []byte) (*rest.Config, error) {
	return clientcmd.RESTConfigFromKubeConfig(kubeconfig)
}

// resolve reads the cluster's attached profiles — from its project
// namespace, else the shared namespace — and resolves its stack.
func (r *ClusterReconciler) resolve(ctx context.Context, c *v1.Cluster, kv string) (*stack.Stack, error) {
	var profiles []profile.Profile
	for _, a := range c.Spec.Profiles {
		name := a.Name + "-" + a.Version
		p := &v1.ClusterProfile{}
		err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, p)
		if apierrors.IsNotFound(err) {
			err = r.Get(ctx, types.NamespacedName{Namespace: SharedNamespace, Name: name}, p)
		}
		if apierrors.IsNotFound(err) {
			continue // ResolveStack reports it, with the versions that exist
		}
		if err != nil {
			return nil, err
		}
		profiles = append(profiles, profile.Profile{ClusterProfile: p, Source: profile.Source{File: "clusterprofile " + p.Namespace + "/" + p.Name}})
	}
	src := profile.Source{File: "cluster " + c.Namespace + "/" + c.Name}
	return stack.ResolveStack(profiles, profile.Cluster{Cluster: c, Source: src}, r.Packs, stack.Facts{KubernetesVersion: kv, Existing: true})
}

// recordLayers writes the layers' phases into the status, keeping the time
// each was last changed. With a pending plan, the layers it would change
// show what runs now and wait as Pending.
func (r *ClusterReconciler) recordLayers(c *v1.Cluster, st *stack.Stack, res *engine.Result, pending *engine.Plan) {
	previous := map[string]v1.LayerStatus{}
	for _, l := range c.Status.Layers {
		previous[l.Name] = l
	}
	results := map[string]engine.LayerResult{}
	for _, l := range res.Layers {
		results[l.Name] = l
	}
	waiting := map[string]engine.LayerPlan{}
	if pending != nil {
		for _, l := range pending.Layers {
			if l.Action != engine.ActionUnchanged {
				waiting[l.Name] = l
			}
		}
	}
	now := metav1.Now()
	var layers []v1.LayerStatus
	for _, l := range st.Layers {
		if w, ok := waiting[l.Name]; ok {
			ls := previous[l.Name]
			if ls.Name == "" {
				ls = v1.LayerStatus{Name: l.Name, Profile: l.Profile, ProfileVersion: l.ProfileVersion, Source: string(l.Source), Package: l.Package}
			}
			ls.Phase, ls.Message = string(engine.PhasePending), fmt.Sprintf("awaiting approval: %s (%s)", w.Action, w.Reason)
			layers = append(layers, ls)
			continue
		}
		lr := results[l.Name]
		ls := v1.LayerStatus{
			Name: l.Name, Profile: l.Profile, ProfileVersion: l.ProfileVersion,
			Source: string(l.Source), Package: l.Package, Version: l.Version,
			Phase: string(lr.Phase), Message: lr.Message, Images: lr.Images,
			LastAppliedTime: previous[l.Name].LastAppliedTime,
		}
		if lr.Action != engine.ActionUnchanged || len(lr.Repaired) > 0 {
			ls.LastAppliedTime = &now
		}
		layers = append(layers, ls)
	}
	c.Status.Layers = layers
}

// recordDrift sets the Drifted condition from the layers that drifted and
// were left alone, and counts repairs.
func (r *ClusterReconciler) recordDrift(c *v1.Cluster, res *engine.Result) {
	var drifted []string
	for _, l := range res.Layers {
		if len(l.Drifted) > 0 {
			drifted = append(drifted, fmt.Sprintf("layer %s: %s", l.Name, strings.Join(l.Drifted, ", ")))
		}
		driftRepairs.Add(float64(len(l.Repaired)))
	}
	if len(drifted) > 0 {
		setCondition(c, v1.ConditionDrifted, metav1.ConditionTrue, "DriftReported", strings.Join(drifted, "; "))
		return
	}
	setCondition(c, v1.ConditionDrifted, metav1.ConditionFalse, "NoDrift", "the workload cluster is as applied")
}

func failedLayers(res *engine.Result) string {
	msg := ""
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady && l.Phase != engine.PhaseRemoved {
			if msg != "" {
				msg += "; "
			}
			msg += fmt.Sprintf("layer %s %s: %s", l.Name, l.Phase, l.Message)
		}
	}
	return msg
}

func setCondition(c *v1.Cluster, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: c.Generation,
	})
}

// equalStatus tells whether a reconcile changed the status, so a no-op
// resync writes nothing. SetStatusCondition keeps a condition's time when
// only its message is the same.
func equalStatus(a, b *v1.ClusterStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// SetupWithManager watches Clusters, and the profiles and Secrets they use.
func (r *ClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Resync == 0 {
		r.Resync = 5 * time.Minute
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.Cluster{}, profileIndex, indexProfiles); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Cluster{}).
		Watches(&v1.ClusterProfile{}, handler.EnqueueRequestsFromMapFunc(r.clustersUsingProfile)).
		Named("cluster").
		Complete(r)
}

const profileIndex = "spec.profiles.nameVersion"

func indexProfiles(o client.Object) []string {
	c := o.(*v1.Cluster)
	keys := make([]string, 0, len(c.Spec.Profiles))
	for _, p := range c.Spec.Profiles {
		keys = append(keys, p.Name+"-"+p.Version)
	}
	return keys
}

// clustersUsingProfile maps a changed profile version to the clusters that
// attach it: in its namespace, or everywhere for a shared profile.
func (r *ClusterReconciler) clustersUsingProfile(ctx context.Context, o client.Object) []ctrl.Request {
	var list v1.ClusterList
	opts := []client.ListOption{client.MatchingFields{profileIndex: o.GetName()}}
	if o.GetNamespace() != SharedNamespace {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
	}
	return reqs
}
