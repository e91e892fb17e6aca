package capilocal

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	infrav1 "strata.dev/strata/api/infrastructure/v1alpha1"
)

// clusterReconciler makes LocalClusters provisioned: the machine they run
// on is this one, so there is nothing to create, and the endpoint is the
// LocalControlPlane's to give.
type clusterReconciler struct {
	client.Client
}

func (r *clusterReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("localcluster").For(&infrav1.LocalCluster{}).Complete(r)
}

func (r *clusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lc := &infrav1.LocalCluster{}
	if err := r.Get(ctx, req.NamespacedName, lc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !lc.DeletionTimestamp.IsZero() || ptr.Deref(lc.Status.Initialization.Provisioned, false) {
		return ctrl.Result{}, nil
	}
	base := lc.DeepCopy()
	lc.Status.Initialization.Provisioned = ptr.To(true)
	meta.SetStatusCondition(&lc.Status.Conditions, metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "Provisioned", ObservedGeneration: lc.Generation,
		Message: "a local cluster needs no infrastructure beyond this machine",
	})
	return ctrl.Result{}, r.Status().Patch(ctx, lc, client.MergeFrom(base))
}
