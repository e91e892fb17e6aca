package capilocal

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	cpv1 "strata.dev/strata/api/controlplane/v1alpha1"
	"strata.dev/strata/internal/provider/local"
)

// controlPlaneReconciler runs each LocalControlPlane's processes through
// the local provider, on the build of its version, and writes the
// kubeconfig Secret Cluster API reaches the workload cluster with.
type controlPlaneReconciler struct {
	client.Client
	local *local.Provider
	log   *slog.Logger
	every time.Duration
	// restarted carries the supervisor's news of a dead control plane.
	restarted chan event.TypedGenericEvent[*cpv1.LocalControlPlane]
}

func (r *controlPlaneReconciler) setup(mgr ctrl.Manager) error {
	r.restarted = make(chan event.TypedGenericEvent[*cpv1.LocalControlPlane], 16)
	err := mgr.Add(ctrlRunnable(func(ctx context.Context) error {
		r.local.Supervise(ctx, r.every, func(key string) {
			ns, name, _ := strings.Cut(key, "/")
			lcp := &cpv1.LocalControlPlane{}
			lcp.Namespace, lcp.Name = ns, name
			select {
			case r.restarted <- event.TypedGenericEvent[*cpv1.LocalControlPlane]{Object: lcp}:
			case <-ctx.Done():
			}
		})
		return nil
	}))
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("localcontrolplane").
		For(&cpv1.LocalControlPlane{}).
		WatchesRawSource(source.Channel(r.restarted, &handler.TypedEnqueueRequestForObject[*cpv1.LocalControlPlane]{})).
		Complete(r)
}

// key is where the local provider keeps a control plane: one folder per
// LocalControlPlane, so a new version restarts the same data.
func key(lcp *cpv1.LocalControlPlane) string { return lcp.Namespace + "/" + lcp.Name }

func (r *controlPlaneReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lcp := &cpv1.LocalControlPlane{}
	if err := r.Get(ctx, req.NamespacedName, lcp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !lcp.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.delete(ctx, lcp)
	}
	cluster := clusterOf(lcp)
	if cluster == "" {
		return ctrl.Result{}, nil // Cluster API labels it with its cluster
	}
	c, err := capiCluster(ctx, r.Client, lcp.Namespace, cluster)
	if err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if paused(c, lcp) {
		return ctrl.Result{}, nil
	}
	if controllerutil.AddFinalizer(lcp, finalizer) {
		if err := r.Update(ctx, lcp); err != nil {
			return ctrl.Result{}, err
		}
	}
	if lcp.Spec.Version == "" {
		return ctrl.Result{}, nil // the topology sets it
	}
	st, err := r.local.Ensure(ctx, local.Spec{
		Key: key(lcp), KubernetesVersion: lcp.Spec.Version, MachineNodes: true,
		APIServerPort: int(lcp.Spec.ControlPlaneEndpoint.Port),
	})
	if err != nil {
		return ctrl.Result{}, r.failed(ctx, lcp, err)
	}
	if st.Restarted {
		r.log.Info("local control plane running", "controlPlane", key(lcp), "version", lcp.Spec.Version, "server", st.Server)
	}
	if err := ensureSecret(ctx, r.Client, lcp, cluster+"-kubeconfig", cluster, st.Kubeconfig); err != nil {
		return ctrl.Result{}, err
	}
	if lcp.Spec.ControlPlaneEndpoint.Port == 0 {
		host, port, err := endpoint(st.Server)
		if err != nil {
			return ctrl.Result{}, err
		}
		base := lcp.DeepCopy()
		lcp.Spec.ControlPlaneEndpoint.Host, lcp.Spec.ControlPlaneEndpoint.Port = host, port
		if err := r.Patch(ctx, lcp, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, err
		}
	}
	base := lcp.DeepCopy()
	one := ptr.To[int32](1)
	lcp.Status.Initialization.ControlPlaneInitialized = ptr.To(true)
	lcp.Status.Version = "v" + strings.TrimPrefix(lcp.Spec.Version, "v")
	lcp.Status.Replicas, lcp.Status.ReadyReplicas, lcp.Status.AvailableReplicas, lcp.Status.UpToDateReplicas = one, one, one, one
	meta.SetStatusCondition(&lcp.Status.Conditions, metav1.Condition{
		Type: "Available", Status: metav1.ConditionTrue, Reason: "Available", ObservedGeneration: lcp.Generation,
		Message: fmt.Sprintf("API server %s answers on Kubernetes %s", st.Server, lcp.Status.Version),
	})
	meta.SetStatusCondition(&lcp.Status.Conditions, metav1.Condition{
		Type: "RollingOut", Status: metav1.ConditionFalse, Reason: "NotRollingOut", ObservedGeneration: lcp.Generation,
	})
	return ctrl.Result{}, r.Status().Patch(ctx, lcp, client.MergeFrom(base))
}

// failed reports a control plane that does not start, with the local
// provider's reason (a Kubernetes build missing names how to make it).
func (r *controlPlaneReconciler) failed(ctx context.Context, lcp *cpv1.LocalControlPlane, cause error) error {
	base := lcp.DeepCopy()
	meta.SetStatusCondition(&lcp.Status.Conditions, metav1.Condition{
		Type: "Available", Status: metav1.ConditionFalse, Reason: "ControlPlaneNotRunning", ObservedGeneration: lcp.Generation,
		Message: cause.Error(),
	})
	if err := r.Status().Patch(ctx, lcp, client.MergeFrom(base)); err != nil {
		return err
	}
	return cause
}

// delete stops the processes and removes the data; the kubeconfig Secret
// goes with the LocalControlPlane that owns it.
func (r *controlPlaneReconciler) delete(ctx context.Context, lcp *cpv1.LocalControlPlane) error {
	if !controllerutil.ContainsFinalizer(lcp, finalizer) {
		return nil
	}
	if err := r.local.Delete(key(lcp)); err != nil {
		return fmt.Errorf("remove local control plane %s: %w", key(lcp), err)
	}
	r.log.Info("local control plane removed", "controlPlane", key(lcp))
	controllerutil.RemoveFinalizer(lcp, finalizer)
	return r.Update(ctx, lcp)
}

// endpoint splits an API server URL into host and port.
func endpoint(server string) (string, int32, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseInt(u.Port(), 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("API server %s: no port", server)
	}
	return u.Hostname(), int32(port), nil
}

// ctrlRunnable runs a function for as long as the manager does.
type ctrlRunnable func(ctx context.Context) error

func (f ctrlRunnable) Start(ctx context.Context) error { return f(ctx) }
