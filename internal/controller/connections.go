package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

// requestTimeout bounds each request to a workload cluster, so a cluster
// that stops answering holds a worker for seconds, not forever.
const requestTimeout = 30 * time.Second

// Backoff of a cluster that cannot be reached: the first retry comes soon,
// then each one waits twice as long, up to the resync period.
const firstRetry = 5 * time.Second

// connections keeps one engine per workload cluster across reconciles, so
// a resync reuses its client connections and Helm configurations instead
// of building them again. An engine is replaced when the kubeconfig Secret
// or the settings it was made with change. It also counts how many times
// in a row each cluster's reconcile failed, for the backoff.
type connections struct {
	mu        sync.Mutex
	byCluster map[types.UID]*connection
	failures  map[types.UID]int
}

type connection struct {
	key    string
	engine *engine.Engine
	// watch is the drift watch on the workload cluster.
	watch *driftWatch
	// events receives the engine's progress for the reconcile being
	// served; a cluster is reconciled by one worker at a time.
	events func(engine.Event)
}

func newConnections() *connections {
	return &connections{byCluster: map[types.UID]*connection{}, failures: map[types.UID]int{}}
}

// engineFor returns the engine of the cluster's workload cluster, with its
// events going to events, and the cluster's Kubernetes version. The
// kubeconfig stays in memory; it is never logged or written to status.
func (r *ClusterReconciler) engineFor(ctx context.Context, c *v1.Cluster, events func(engine.Event)) (stackEngine, string, error) {
	if r.Hollow != nil {
		return r.Hollow, r.Hollow.KubernetesVersion(), nil
	}
	settings := fmt.Sprintf("%s/%s", c.Spec.DriftPolicy, r.LayerTimeout)
	if r.Workload != nil {
		// An agent reaches the cluster it runs in.
		return r.connect(c, "agent/"+settings, func() (*rest.Config, string, error) {
			return rest.CopyConfig(r.Workload), "agent/" + settings, nil
		}, events)
	}
	ref := KubeconfigRef(c)
	if ref == nil {
		return nil, "", errors.New("spec.kubeconfigSecretRef is not set: an imported cluster is reached through a kubeconfig Secret")
	}
	key := ref.Key
	name := types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}
	// The metadata comes from the cache; the Secret itself is read only
	// when it changed since the engine was made.
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.Get(ctx, name, meta)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Secret just written (a local
		// cluster's): ask the API server before saying it is missing.
		err = r.APIReader.Get(ctx, name, meta)
	}
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s: %w", name, err)
	}
	connKey := func(m metav1.Object) string {
		return fmt.Sprintf("%s/%s/%s/%s", m.GetUID(), m.GetResourceVersion(), key, settings)
	}
	return r.connect(c, connKey(meta), func() (*rest.Config, string, error) {
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, name, secret); err != nil {
			return nil, "", fmt.Errorf("kubeconfig Secret %s: %w", name, err)
		}
		data, ok := secret.Data[key]
		if !ok {
			return nil, "", fmt.Errorf("kubeconfig Secret %s has no key %q", name, key)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
		if err != nil {
			// The parser's message may quote the file: it is not repeated.
			return nil, "", fmt.Errorf("kubeconfig Secret %s key %q is not a usable kubeconfig", name, key)
		}
		// Keyed by the version read, which the cache may not have yet.
		return cfg, connKey(secret), nil
	}, events)
}

// connect returns the cluster's engine, made anew with load when none was
// made for cacheKey, and the cluster's Kubernetes version.
func (r *ClusterReconciler) connect(c *v1.Cluster, cacheKey string, load func() (*rest.Config, string, error), events func(engine.Event)) (*engine.Engine, string, error) {
	r.conns.mu.Lock()
	conn := r.conns.byCluster[c.UID]
	r.conns.mu.Unlock()
	if conn == nil || conn.key != cacheKey {
		cfg, key, err := load()
		if err != nil {
			return nil, "", err
		}
		cfg.Timeout = requestTimeout
		cfg.Wrap(countRequests)
		conn = &connection{key: key}
		cluster := client.ObjectKeyFromObject(c)
		// Watches last longer than any one request may.
		watchCfg := rest.CopyConfig(cfg)
		watchCfg.Timeout = 0
		watch, err := watchDrift(watchCfg, func() { r.wakeUp(cluster) })
		if err != nil {
			return nil, "", err
		}
		conn.watch = watch
		e, err := engine.New(engine.Options{
			RESTConfig: cfg, Timeout: r.LayerTimeout, ReportDrift: c.Spec.DriftPolicy == v1.DriftReport,
			Events:   func(ev engine.Event) { conn.events(ev) },
			Charts:   chartsource.New(chartsource.Options{Access: r.chartAccess(c.Namespace), ZarfDir: r.zarfDir()}),
			Renders:  r.renders,
			Versions: watch,
			Turns:    r.turns,
		})
		if err != nil {
			watch.stop()
			return nil, "", err
		}
		conn.engine = e
		r.conns.mu.Lock()
		if old := r.conns.byCluster[c.UID]; old != nil {
			old.watch.stop()
		}
		r.conns.byCluster[c.UID] = conn
		r.conns.mu.Unlock()
	}
	conn.events = events
	// The cluster may have been upgraded or gained kinds since the last
	// reconcile: the engine then reads its version and APIs again.
	if conn.watch.APIsChanged() {
		conn.engine.Refresh()
	}
	kv, err := conn.engine.KubernetesVersion()
	if err != nil {
		return nil, "", err
	}
	return conn.engine, kv, nil
}

// stackEngine plans and applies a cluster's stack: an *engine.Engine, or
// the *engine.Hollow of a hollow agent.
type stackEngine interface {
	Plan(ctx context.Context, st *stack.Stack) (*engine.Plan, error)
	Apply(ctx context.Context, plan *engine.Plan) (*engine.Result, error)
	Object(ctx context.Context, apiVersion, kind, namespace, name string) (*unstructured.Unstructured, error)
}

// retryAfterFailure counts one more failed reconcile in a row and says
// when to try again: 5 s, 10 s, 20 s … up to the resync period.
func (r *ClusterReconciler) retryAfterFailure(c *v1.Cluster) time.Duration {
	r.conns.mu.Lock()
	defer r.conns.mu.Unlock()
	n := r.conns.failures[c.UID]
	r.conns.failures[c.UID] = n + 1
	return backoff(n, r.Resync)
}

// backoff is the wait before retry n (0-based), doubling from firstRetry
// and capped at limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := firstRetry
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// reached resets the cluster's backoff once a reconcile got through.
func (r *ClusterReconciler) reached(c *v1.Cluster) {
	r.conns.mu.Lock()
	delete(r.conns.failures, c.UID)
	r.conns.mu.Unlock()
}

// dropEngine stops the cluster's drift watch and drops its engine, so the
// next engineFor makes a new one from the kubeconfig Secret as stored.
func (r *ClusterReconciler) dropEngine(c *v1.Cluster) {
	r.conns.mu.Lock()
	defer r.conns.mu.Unlock()
	if conn := r.conns.byCluster[c.UID]; conn != nil {
		conn.watch.stop()
	}
	delete(r.conns.byCluster, c.UID)
}

// forgetConnection drops a deleted cluster's engine, watch and backoff.
func (r *ClusterReconciler) forgetConnection(c *v1.Cluster) {
	r.dropEngine(c)
	r.conns.mu.Lock()
	delete(r.conns.failures, c.UID)
	r.conns.mu.Unlock()
}

// stopAll ends every drift watch, when the manager stops.
func (cs *connections) stopAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for uid, conn := range cs.byCluster {
		conn.watch.stop()
		delete(cs.byCluster, uid)
	}
}

// wakeUp queues a reconcile of the cluster. It never blocks: when the
// queue is full, the wake-ups already in it and the resync suffice.
func (r *ClusterReconciler) wakeUp(key client.ObjectKey) {
	select {
	case r.wake <- event.GenericEvent{Object: &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}}:
	default:
	}
}

// errNotConnected: the manager holds no connection to a cluster.
var errNotConnected = errors.New("the manager holds no connection to this cluster")

// refusals says, by layer, why a cluster would refuse the named layers of
// st — APIs it does not serve, a chart that does not render — from what
// the engine of its connection knows, writing nothing. A cluster the
// manager holds no connection to (an agent's, one not reached yet,
// another shard's) answers errNotConnected: its layers go unchecked.
func (r *ClusterReconciler) refusals(ctx context.Context, c *v1.Cluster, st *stack.Stack, visible []profile.Profile, layers []string) (map[string]string, error) {
	r.conns.mu.Lock()
	conn := r.conns.byCluster[c.UID]
	r.conns.mu.Unlock()
	if conn == nil || conn.engine == nil {
		return nil, errNotConnected
	}
	// The draft's charts are checked with its own trust, as a cluster
	// taking it would.
	if err := r.trustCharts(ctx, st, visible); err != nil {
		return nil, err
	}
	return conn.engine.Refusals(st, layers)
}
