package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/provider/clusterapi"
	"strata.dev/strata/internal/stack"
)

// provisioningRecheck is how often a capi cluster Cluster API is still
// making is looked at, besides the watch on its Cluster API Cluster.
const provisioningRecheck = 5 * time.Second

// capiProgress is what Cluster API says of a capi cluster, for the rest of
// its reconcile.
type capiProgress struct {
	// initialized: the control plane answers, so layers can be applied.
	initialized bool
	// held: a Manual cluster's topology keeps the Kubernetes version it
	// runs until its plan is approved; the reconcile applies the topology
	// again once it is.
	held bool
	// upgradingTo, when set, is the version Cluster API is moving the
	// control plane to: its API server restarts meanwhile, so the layers
	// wait.
	upgradingTo string
	// busy says what Cluster API is still doing to the topology (workers
	// being replaced…): the cluster is not Ready until it is done.
	busy string
}

// ensureCAPI has Cluster API make the cluster its profiles and pools
// describe, and records what Cluster API says of it. A Manual cluster
// keeps the Kubernetes version its Cluster API Cluster has until its plan —
// which shows the k8s layer's upgrade — is approved.
func (r *ClusterReconciler) ensureCAPI(ctx context.Context, c *v1.Cluster) (capiProgress, error) {
	var p capiProgress
	resolved, err := r.resolve(ctx, c, "")
	if err != nil {
		return p, err
	}
	kv := resolved.stack.KubernetesVersion
	if err := clusterapi.Check(ctx, r.RESTMapper(), r.APIReader, c, kv); err != nil {
		return p, err
	}
	if resolved.policy == v1.UpdateManual {
		existing, err := clusterapi.Get(ctx, r.APIReader, c)
		if err != nil {
			return p, err
		}
		if running := topologyVersion(existing); running != "" && running != "v"+strings.TrimPrefix(kv, "v") {
			kv, p.held = running, true
		}
	}
	got, err := r.applyTopology(ctx, c, kv)
	if err != nil {
		return p, err
	}
	obs := clusterapi.Observe(got)
	obs.Status.Version = clusterapi.ControlPlaneVersion(ctx, r.RESTMapper(), r.APIReader, got)
	c.Status.CAPI = &obs.Status
	reason := obs.Available.Reason
	if reason == "" {
		reason = "NotReported"
	}
	setCondition(c, v1.ConditionProvisioned, obs.Available.Status, reason, obs.Available.Message)
	p.initialized, p.busy = obs.Initialized, obs.Busy
	if want := topologyVersion(got); obs.Initialized && obs.Status.Version != "" && obs.Status.Version != want {
		p.upgradingTo = want
	}
	return p, nil
}

// applyTopology applies the Cluster API Cluster with Kubernetes version kv.
func (r *ClusterReconciler) applyTopology(ctx context.Context, c *v1.Cluster, kv string) (*unstructured.Unstructured, error) {
	want, err := clusterapi.Desired(c, kv)
	if err != nil {
		return nil, err
	}
	return clusterapi.Apply(ctx, r.Client, c, want)
}

func topologyVersion(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	v, _, _ := unstructured.NestedString(u.Object, "spec", "topology", "version")
	return v
}

// byTheProvider marks, in a capi cluster's pending plan, the os and k8s
// layers' changes as Cluster API's to make: approving the plan moves the
// topology, and Cluster API upgrades the control plane, then the workers.
func byTheProvider(c *v1.Cluster, pending *v1.PendingPlan, st *stack.Stack) {
	if c.Spec.Provider != v1.ProviderCAPI {
		return
	}
	for i, l := range pending.Layers {
		if sl, ok := st.Layer(l.Name); ok && (sl.Kind == v1.LayerK8s || sl.Kind == v1.LayerOS) {
			pending.Layers[i].Reason = strings.TrimSpace(l.Reason + ", by the provider (Cluster API)")
		}
	}
}

// provisioning reports a capi cluster whose control plane Cluster API has
// not initialized yet, or is upgrading: its layers wait.
func (r *ClusterReconciler) provisioning(c *v1.Cluster, p capiProgress) ctrl.Result {
	s := c.Status.CAPI
	reason := "Provisioning"
	msg := fmt.Sprintf("Cluster API is making the cluster (phase %s): control plane %d/%d, workers %d/%d",
		s.Phase, s.ControlPlane.Ready, s.ControlPlane.Desired, s.Workers.Ready, s.Workers.Desired)
	if p.upgradingTo != "" {
		reason = "Upgrading"
		msg = fmt.Sprintf("Cluster API is upgrading the control plane from %s to %s; the layers wait for its API server", s.Version, p.upgradingTo)
	}
	c.Status.Phase = v1.ClusterProvisioning
	apimeta.RemoveStatusCondition(&c.Status.Conditions, v1.ConditionStalled)
	setCondition(c, v1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(c, v1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
	return ctrl.Result{RequeueAfter: provisioningRecheck}
}

// notAvailable turns a capi cluster whose layers are Ready but which Cluster
// API does not call Available (a worker pool still scaling), or whose
// topology it is still making (workers being replaced in an upgrade), back
// to not Ready, so that roll-outs wait for it too.
func (r *ClusterReconciler) notAvailable(c *v1.Cluster, p capiProgress) (ctrl.Result, bool) {
	if c.Spec.Provider != v1.ProviderCAPI || c.Status.Phase != v1.ClusterReady {
		return ctrl.Result{}, false
	}
	reason, msg := "", ""
	switch {
	case !apimeta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionProvisioned):
		reason, msg = "NotAvailable", "layers Ready; Cluster API does not call the cluster Available"
		if provisioned := apimeta.FindStatusCondition(c.Status.Conditions, v1.ConditionProvisioned); provisioned != nil && provisioned.Message != "" {
			msg = "layers Ready; Cluster API: " + provisioned.Message
		}
	case p.busy != "":
		reason, msg = "TopologyInProgress", "layers Ready; Cluster API: "+p.busy
	default:
		return ctrl.Result{}, false
	}
	c.Status.Phase = v1.ClusterProvisioning
	setCondition(c, v1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(c, v1.ConditionReconciling, metav1.ConditionTrue, reason, "waiting for Cluster API to finish the cluster")
	return ctrl.Result{RequeueAfter: provisioningRecheck}, true
}

// deleteCAPI removes a capi cluster: its layers first (unless orphaned),
// while its control plane answers, then its Cluster API Cluster, whose
// Machines and infrastructure Cluster API deletes before it goes. A non-nil
// result says when to look again.
func (r *ClusterReconciler) deleteCAPI(ctx context.Context, c *v1.Cluster) (*ctrl.Result, error) {
	u, err := clusterapi.Get(ctx, r.APIReader, c)
	if err != nil || u == nil {
		return nil, err
	}
	if u.GetDeletionTimestamp() == nil {
		initialized := clusterapi.Observe(u).Initialized
		if initialized && c.Annotations[OrphanAnnotation] != "true" {
			if retry, err := r.removeLayers(ctx, c); retry != nil || err != nil {
				return retry, err
			}
		}
		if err := r.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
			return &ctrl.Result{}, err
		}
	}
	r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "Deprovisioning", "Delete", "waiting for Cluster API to delete the cluster's machines and infrastructure")
	return &ctrl.Result{RequeueAfter: provisioningRecheck}, nil
}

// watchCAPI brings a capi cluster back whenever its Cluster API Cluster
// changes, and when its ClusterClass does (a cluster waits until Cluster
// API has reconciled its class, or for a class that is not there yet), when
// Cluster API is installed as the manager starts.
func watchCAPI(mgr ctrl.Manager, b *builder.Builder) *builder.Builder {
	if _, err := mgr.GetRESTMapper().RESTMapping(schema.GroupKind{Group: clusterapi.GroupVersion.Group, Kind: "Cluster"}, clusterapi.GroupVersion.Version); err != nil {
		return b
	}
	return b.Watches(clusterapi.Object("Cluster"), handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &v1.Cluster{}, handler.OnlyControllerOwner())).
		Watches(clusterapi.Object("ClusterClass"), handler.EnqueueRequestsFromMapFunc(clustersOfClass(mgr.GetClient())))
}

// clustersOfClass maps a ClusterClass to the capi clusters that name it.
// Classes change seldom, so a list from the cache is enough.
func clustersOfClass(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, class client.Object) []reconcile.Request {
		var clusters v1.ClusterList
		if err := c.List(ctx, &clusters); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range clusters.Items {
			cl := &clusters.Items[i]
			if cl.Spec.Provider == v1.ProviderCAPI && cl.Spec.CAPI != nil && cl.Spec.CAPI.ClassRef.Name == class.GetName() &&
				clusterapi.ClassNamespace(cl) == class.GetNamespace() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cl)})
			}
		}
		return out
	}
}
