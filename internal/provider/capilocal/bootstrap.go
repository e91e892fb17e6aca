package capilocal

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bootstrapv1 "strata.dev/strata/api/bootstrap/v1alpha1"
)

// bootstrapData is what a local Machine's data Secret holds: a kwok node
// runs no bootstrap script, yet Cluster API makes a Machine's
// infrastructure only once its bootstrap data exists.
const bootstrapData = "# A local machine is a kwok node: it needs no bootstrap data.\n"

// configReconciler writes each LocalConfig's data Secret, named after it.
type configReconciler struct {
	client.Client
}

func (r *configReconciler) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("localconfig").For(&bootstrapv1.LocalConfig{}).Complete(r)
}

func (r *configReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cfg := &bootstrapv1.LocalConfig{}
	if err := r.Get(ctx, req.NamespacedName, cfg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	cluster := clusterOf(cfg)
	if cluster == "" || !cfg.DeletionTimestamp.IsZero() || ptr.Deref(cfg.Status.Initialization.DataSecretCreated, false) {
		return ctrl.Result{}, nil // Cluster API labels it with its cluster; the Secret goes with it (owner reference)
	}
	if c, err := capiCluster(ctx, r.Client, cfg.Namespace, cluster); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	} else if paused(c, cfg) {
		return ctrl.Result{}, nil
	}
	if err := ensureSecret(ctx, r.Client, cfg, cfg.Name, cluster, []byte(bootstrapData)); err != nil {
		return ctrl.Result{}, err
	}
	base := cfg.DeepCopy()
	cfg.Status.DataSecretName = cfg.Name
	cfg.Status.Initialization.DataSecretCreated = ptr.To(true)
	meta.SetStatusCondition(&cfg.Status.Conditions, metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "DataSecretCreated", ObservedGeneration: cfg.Generation,
	})
	return ctrl.Result{}, r.Status().Patch(ctx, cfg, client.MergeFrom(base))
}
