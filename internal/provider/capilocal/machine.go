package capilocal

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	infrav1 "strata.dev/strata/api/infrastructure/v1alpha1"
	"strata.dev/strata/internal/controlplane"
)

// A Machine's pool: the topology's name of its machineDeployment (a Strata
// Cluster's pool name), else its MachineDeployment's own name. Its node
// carries it as strata.dev/node-pool, as the nodes of a local pool do.
const (
	TopologyDeploymentLabel = "topology.cluster.x-k8s.io/deployment-name"
	DeploymentLabel         = "cluster.x-k8s.io/deployment-name"
)

// waitForControlPlane is how soon a machine whose cluster has no kubeconfig
// yet is looked at again; the Secret is written by another controller.
const waitForControlPlane = 2 * time.Second

// machineReconciler makes each LocalMachine a kwok node in its workload
// cluster, named after its Machine, with the provider ID that links them.
type machineReconciler struct {
	client.Client
	workloads *workloads
	log       *slog.Logger
}

func (r *machineReconciler) setup(mgr ctrl.Manager) error {
	machine := &unstructured.Unstructured{}
	machine.SetGroupVersionKind(CAPI.WithKind("Machine"))
	return ctrl.NewControllerManagedBy(mgr).Named("localmachine").
		For(&infrav1.LocalMachine{}).
		// A Machine's bootstrap data and version arrive after its
		// LocalMachine is made.
		Watches(machine, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, m client.Object) []reconcile.Request {
			u := m.(*unstructured.Unstructured)
			kind, _, _ := unstructured.NestedString(u.Object, "spec", "infrastructureRef", "kind")
			name, _, _ := unstructured.NestedString(u.Object, "spec", "infrastructureRef", "name")
			if kind != "LocalMachine" || name == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: u.GetNamespace(), Name: name}}}
		})).
		Complete(r)
}

// ProviderID is the provider ID of a local machine's node.
func ProviderID(namespace, cluster, machine string) string {
	return "local://" + namespace + "/" + cluster + "/" + machine
}

func (r *machineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lm := &infrav1.LocalMachine{}
	if err := r.Get(ctx, req.NamespacedName, lm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	cluster := clusterOf(lm)
	machine := r.machineOf(ctx, lm)
	if !lm.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.delete(ctx, lm, cluster)
	}
	if cluster == "" || machine == nil {
		return ctrl.Result{}, nil // Cluster API labels and owns it, then comes back
	}
	c, err := capiCluster(ctx, r.Client, lm.Namespace, cluster)
	if err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if paused(c, lm) {
		return ctrl.Result{}, nil
	}
	if controllerutil.AddFinalizer(lm, finalizer) {
		if err := r.Update(ctx, lm); err != nil {
			return ctrl.Result{}, err
		}
	}
	// The contract: infrastructure is made once the bootstrap data exists.
	if data, _, _ := unstructured.NestedString(machine.Object, "spec", "bootstrap", "dataSecretName"); data == "" {
		return ctrl.Result{}, nil
	}
	cs, err := r.workloads.clientFor(ctx, r.Client, lm.Namespace, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cs == nil {
		return ctrl.Result{RequeueAfter: waitForControlPlane}, nil
	}
	version, _, _ := unstructured.NestedString(machine.Object, "spec", "version")
	providerID := ProviderID(lm.Namespace, cluster, machine.GetName())
	pool := machine.GetLabels()[TopologyDeploymentLabel]
	if pool == "" {
		pool = machine.GetLabels()[DeploymentLabel]
	}
	node, err := controlplane.FakeNode(machine.GetName(), controlplane.NodePool{
		Name: pool, CPU: lm.Spec.CPU, Memory: lm.Spec.Memory, Disk: lm.Spec.Disk,
	}, version)
	if err != nil {
		return ctrl.Result{}, r.report(ctx, lm, metav1.ConditionFalse, "InvalidCapacity", err.Error())
	}
	node.Spec.ProviderID = providerID
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create node %s in cluster %s: %w", node.Name, cluster, err)
	}
	if lm.Spec.ProviderID != providerID {
		base := lm.DeepCopy()
		lm.Spec.ProviderID = providerID
		if err := r.Patch(ctx, lm, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, err
		}
	}
	base := lm.DeepCopy()
	lm.Status.Initialization.Provisioned = ptr.To(true)
	lm.Status.NodeName = node.Name
	lm.Status.Addresses = []infrav1.MachineAddress{{Type: "Hostname", Address: node.Name}}
	meta.SetStatusCondition(&lm.Status.Conditions, metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "NodeCreated", ObservedGeneration: lm.Generation,
		Message: "kwok node " + node.Name + " in cluster " + cluster,
	})
	return ctrl.Result{}, r.Status().Patch(ctx, lm, client.MergeFrom(base))
}

// machineOf returns the Machine that owns lm, nil until Cluster API sets it.
func (r *machineReconciler) machineOf(ctx context.Context, lm *infrav1.LocalMachine) *unstructured.Unstructured {
	for _, ref := range lm.OwnerReferences {
		if ref.Kind != "Machine" {
			continue
		}
		if gv, err := parseGroup(ref.APIVersion); err != nil || gv != CAPI.Group {
			continue
		}
		m := &unstructured.Unstructured{}
		m.SetGroupVersionKind(CAPI.WithKind("Machine"))
		if err := r.Get(ctx, client.ObjectKey{Namespace: lm.Namespace, Name: ref.Name}, m); err == nil {
			return m
		}
	}
	return nil
}

func (r *machineReconciler) report(ctx context.Context, lm *infrav1.LocalMachine, status metav1.ConditionStatus, reason, message string) error {
	base := lm.DeepCopy()
	meta.SetStatusCondition(&lm.Status.Conditions, metav1.Condition{Type: "Ready", Status: status, Reason: reason, Message: message, ObservedGeneration: lm.Generation})
	return r.Status().Patch(ctx, lm, client.MergeFrom(base))
}

// delete removes the node from the workload cluster. A cluster whose
// control plane is already gone took its nodes with it.
func (r *machineReconciler) delete(ctx context.Context, lm *infrav1.LocalMachine, cluster string) error {
	if !controllerutil.ContainsFinalizer(lm, finalizer) {
		return nil
	}
	if lm.Status.NodeName != "" && cluster != "" {
		cs, err := r.workloads.clientFor(ctx, r.Client, lm.Namespace, cluster)
		if err != nil {
			return err
		}
		if cs != nil {
			err := cs.CoreV1().Nodes().Delete(ctx, lm.Status.NodeName, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) && !unreachable(err) {
				return fmt.Errorf("delete node %s in cluster %s: %w", lm.Status.NodeName, cluster, err)
			}
		}
	}
	controllerutil.RemoveFinalizer(lm, finalizer)
	return r.Update(ctx, lm)
}

// workloads keeps one clientset per workload cluster, made again when its
// kubeconfig changes.
type workloads struct {
	mu      sync.Mutex
	clients map[string]workloadClient
}

type workloadClient struct {
	sum [32]byte
	cs  *kubernetes.Clientset
}

// clientFor returns a clientset for the cluster from the kubeconfig Secret
// its control plane wrote; nil, nil while there is none.
func (w *workloads) clientFor(ctx context.Context, c client.Client, namespace, cluster string) (*kubernetes.Clientset, error) {
	secret := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: cluster + "-kubeconfig"}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	data := secret.Data["value"]
	sum := sha256.Sum256(data)
	k := namespace + "/" + cluster
	w.mu.Lock()
	defer w.mu.Unlock()
	if got, ok := w.clients[k]; ok && got.sum == sum {
		return got.cs, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s-kubeconfig: %w", namespace, cluster, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if w.clients == nil {
		w.clients = map[string]workloadClient{}
	}
	w.clients[k] = workloadClient{sum: sum, cs: cs}
	return cs, nil
}

func parseGroup(apiVersion string) (string, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	return gv.Group, err
}

// unreachable says the workload API server is not there: its control plane
// was stopped, so the node went with it.
func unreachable(err error) bool {
	return utilnet.IsConnectionRefused(err)
}
