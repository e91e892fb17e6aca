// Package capilocal is Strata's own Cluster API provider: the `local`
// infrastructure (LocalCluster, LocalMachine), control plane
// (LocalControlPlane) and bootstrap (LocalConfig) of the v1beta2
// contracts. A local control plane is a real etcd, kube-apiserver,
// controller-manager and scheduler run by the local provider; each
// Machine is a kwok node in it, linked to its Machine by provider ID. So
// Cluster API's own manager provisions, scales, upgrades and deletes real
// clusters on this machine, and Strata drives them as it would drive any
// other provider's.
package capilocal

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	bootstrapv1 "strata.dev/strata/api/bootstrap/v1alpha1"
	cpv1 "strata.dev/strata/api/controlplane/v1alpha1"
	infrav1 "strata.dev/strata/api/infrastructure/v1alpha1"
	"strata.dev/strata/internal/provider/local"
)

// Cluster API's names this provider reads or sets.
const (
	// ClusterNameLabel is on every object of a cluster.
	ClusterNameLabel = "cluster.x-k8s.io/cluster-name"
	// PausedAnnotation stops reconciliation of an object.
	PausedAnnotation = "cluster.x-k8s.io/paused"
	// SecretType is the type of the Secrets Cluster API reads.
	SecretType corev1.SecretType = "cluster.x-k8s.io/secret"
	// finalizer keeps a LocalControlPlane or LocalMachine until what it
	// made on this machine is gone.
	finalizer = "local.strata.dev/cleanup"
)

// CAPI is Cluster API's core group and the version this provider speaks.
var CAPI = schema.GroupVersion{Group: "cluster.x-k8s.io", Version: "v1beta2"}

// Scheme holds the provider's types and the core ones.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = infrav1.AddToScheme(s)
	_ = cpv1.AddToScheme(s)
	_ = bootstrapv1.AddToScheme(s)
	return s
}

// Options configure the providers.
type Options struct {
	// Local runs the control planes; its Root holds their data.
	Local *local.Provider
	// Log receives the providers' news; discarded when nil.
	Log *slog.Logger
	// SuperviseEvery is how often dead control planes are looked for; 2 s
	// when zero.
	SuperviseEvery time.Duration
	// HealthAddr serves /healthz and /readyz; "0" or empty for none.
	HealthAddr string
	// SeveralPerProcess lets a process run more than one set of providers
	// (tests of one package do), skipping controller name checks.
	SeveralPerProcess bool
}

// NewManager is a controller manager on the management plane cfg that runs
// the four providers, its metrics off; the caller starts it.
func NewManager(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	health := opts.HealthAddr
	if health == "" {
		health = "0"
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: health,
		Controller: config.Controller{SkipNameValidation: ptr.To(opts.SeveralPerProcess)},
	})
	if err != nil {
		return nil, err
	}
	if health != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, Setup(mgr, opts)
}

// Setup registers the four providers' reconcilers with mgr.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.SuperviseEvery == 0 {
		opts.SuperviseEvery = 2 * time.Second
	}
	c := mgr.GetClient()
	if err := (&clusterReconciler{Client: c}).setup(mgr); err != nil {
		return err
	}
	if err := (&configReconciler{Client: c}).setup(mgr); err != nil {
		return err
	}
	if err := (&controlPlaneReconciler{Client: c, local: opts.Local, log: opts.Log, every: opts.SuperviseEvery}).setup(mgr); err != nil {
		return err
	}
	return (&machineReconciler{Client: c, workloads: &workloads{}, log: opts.Log}).setup(mgr)
}

// capiCluster reads the Cluster API Cluster an object belongs to.
func capiCluster(ctx context.Context, c client.Client, namespace, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(CAPI.WithKind("Cluster"))
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		return nil, err
	}
	return u, nil
}

// paused says whether Cluster API asked the providers to leave obj and its
// cluster alone (a move between management clusters, a user's pause).
func paused(cluster *unstructured.Unstructured, obj client.Object) bool {
	if _, ok := obj.GetAnnotations()[PausedAnnotation]; ok {
		return true
	}
	if cluster == nil {
		return false
	}
	p, _, _ := unstructured.NestedBool(cluster.Object, "spec", "paused")
	return p
}

// clusterOf returns the name of the Cluster an object belongs to, from the
// label Cluster API puts on it; empty until it does.
func clusterOf(obj client.Object) string { return obj.GetLabels()[ClusterNameLabel] }

// ensureSecret creates or updates a Secret Cluster API reads: labelled with
// the cluster, owned by owner, its data under key "value".
func ensureSecret(ctx context.Context, c client.Client, owner client.Object, name, cluster string, value []byte) error {
	want := &corev1.Secret{}
	want.Namespace, want.Name = owner.GetNamespace(), name
	_, err := ctrl.CreateOrUpdate(ctx, c, want, func() error {
		if want.Labels == nil {
			want.Labels = map[string]string{}
		}
		want.Labels[ClusterNameLabel] = cluster
		want.Type = SecretType
		want.Data = map[string][]byte{"value": value}
		return ctrl.SetControllerReference(owner, want, c.Scheme())
	})
	if err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return nil
}
