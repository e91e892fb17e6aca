package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"strata.dev/strata/internal/engine"
)

// watchedKinds are the kinds of layer objects watched for drift between
// resyncs: those a hand most often changes. The periodic check covers the
// rest.
var watchedKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "serviceaccounts"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "batch", Version: "v1", Resource: "cronjobs"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
	{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"},
	{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	{Version: "v1", Resource: "namespaces"},
}

// apiKinds define the kinds a cluster serves. They are watched whole, not
// only those layers apply: any change to one may add or drop kinds, and the
// engine then reads the cluster's APIs again. Layers' CRDs are among them
// (Helm installs a chart's crds/ without its label), so they are checked
// for drift from this watch too.
var apiKinds = []schema.GroupVersionResource{
	{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"},
}

// layerObjects selects what layers apply: Helm's ownership label, which
// Strata sets on every object of a layer.
const layerObjects = "app.kubernetes.io/managed-by=Helm"

// driftWatch watches, by metadata only, the layer objects of a workload
// cluster: it calls changed when someone other than Strata changes or
// deletes one, so that drift is found at once rather than at the next
// resync, and tells the engine each object's written version, so that a
// resync checks only objects written since they were last checked.
//
// A kind of watchedKinds is watched from the first time the engine asks
// about an object of it: a cluster pays only for the kinds its layers use.
// Each kind is a reflector filling a map, without the shared informers'
// queue, event processor and listener buffers: per cluster and kind, that
// machinery was about ten goroutines and 20 KiB held while idle, most of
// a manager's memory per cluster.
type driftWatch struct {
	client  metadata.Interface
	changed func()
	ctx     context.Context
	cancel  func()
	running sync.WaitGroup

	mu    sync.Mutex
	kinds map[schema.GroupVersionResource]*kindWatch
	// apisChanged is set when a CRD or APIService changed, or a watch
	// broke (the API server may have restarted on a new version).
	apisChanged atomic.Bool
}

// APIsChanged says whether the cluster's APIs may have changed since it
// was last asked.
func (w *driftWatch) APIsChanged() bool { return w.apisChanged.Swap(false) }

// Seen is what the watch last saw of the object, for the kinds watched.
// Asking about a kind it may watch and does not yet starts its watch.
func (w *driftWatch) Seen(gvr schema.GroupVersionResource, namespace, name string) (engine.SeenObject, bool) {
	m, ok := w.get(gvr, namespace, name)
	return m.SeenObject, ok
}

// get is what the watch last saw of the object, once its kind's watch has
// listed it.
func (w *driftWatch) get(gvr schema.GroupVersionResource, namespace, name string) (seenMeta, bool) {
	w.mu.Lock()
	k := w.kinds[gvr]
	if k == nil && slices.Contains(watchedKinds, gvr) && w.ctx.Err() == nil {
		k = w.start(gvr, layerObjects, w.layerEvents())
	}
	w.mu.Unlock()
	if k == nil {
		return seenMeta{}, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	return k.get(key)
}

// watchDrift starts a driftWatch; it runs until its stop is called.
func watchDrift(cfg *rest.Config, changed func()) (*driftWatch, error) {
	// Uncompressed: each compressed watch stream holds a decompressor of
	// some 40 KiB, more than the metadata it carries. Asked per request
	// rather than with DisableCompression, which would keep a transport,
	// and so a connection, of its own beside the engine's.
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(askUncompressed)
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &driftWatch{client: client, changed: changed, ctx: ctx, cancel: cancel, kinds: map[schema.GroupVersionResource]*kindWatch{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, gvr := range apiKinds {
		w.start(gvr, "", w.apiEvents())
	}
	return w, nil
}

// askUncompressed asks the server not to compress its answer; a request
// that names its encoding is neither marked for gzip nor decompressed by
// the Go transport.
func askUncompressed(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req = req.Clone(req.Context())
		req.Header.Set("Accept-Encoding", "identity")
		return next.RoundTrip(req)
	})
}

// stop ends every watch and waits for them to end.
func (w *driftWatch) stop() {
	w.mu.Lock()
	w.cancel()
	w.mu.Unlock()
	w.running.Wait()
}

// layerEvents wake the cluster up when someone else changed or deleted a
// layer object.
func (w *driftWatch) layerEvents() kindEvents {
	return kindEvents{
		updated: func(old, obj seenMeta) {
			if changedByHand(old, obj) {
				w.changed()
			}
		},
		deleted: w.changed,
	}
}

// apiEvents note that the cluster's kinds may have changed, and wake the
// cluster up for a layer's CRD changed or deleted by someone else.
func (w *driftWatch) apiEvents() kindEvents {
	layers := w.layerEvents()
	return kindEvents{
		added: func() { w.apisChanged.Store(true) },
		updated: func(old, obj seenMeta) {
			w.apisChanged.Store(true)
			layers.updated(old, obj)
		},
		deleted: func() {
			w.apisChanged.Store(true)
			layers.deleted()
		},
	}
}

// start runs a reflector for the kind until the watch stops; w.mu is held.
func (w *driftWatch) start(gvr schema.GroupVersionResource, selector string, events kindEvents) *kindWatch {
	k := &kindWatch{objects: map[string]seenMeta{}, events: events}
	w.kinds[gvr] = k
	resource := w.client.Resource(gvr)
	options := func(o metav1.ListOptions) metav1.ListOptions {
		o.LabelSelector = selector
		return o
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			// A list after the first follows a broken watch.
			if k.listed.Load() {
				w.apisChanged.Store(true)
			}
			return resource.List(ctx, options(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			wi, err := resource.Watch(ctx, options(o))
			if err != nil {
				w.apisChanged.Store(true)
			}
			return wi, err
		},
	}
	r := cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, w.client), &metav1.PartialObjectMetadata{}, k,
		cache.ReflectorOptions{Name: "drift watch of " + gvr.String(), TypeDescription: gvr.String()})
	w.running.Go(func() { r.RunWithContext(w.ctx) })
	return k
}

// kindEvents are what a kindWatch tells of changes after its first list;
// any may be nil.
type kindEvents struct {
	added   func()
	updated func(old, obj seenMeta)
	deleted func()
}

// kindWatch is the store a kind's reflector fills: what was last seen of
// each object, by namespace/name.
type kindWatch struct {
	mu      sync.RWMutex
	objects map[string]seenMeta
	listed  atomic.Bool
	events  kindEvents
}

var _ cache.ReflectorStore = (*kindWatch)(nil)

func (k *kindWatch) get(key string) (seenMeta, bool) {
	if !k.listed.Load() {
		return seenMeta{}, false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	m, ok := k.objects[key]
	return m, ok
}

func (k *kindWatch) Add(obj any) error    { return k.put(obj) }
func (k *kindWatch) Update(obj any) error { return k.put(obj) }

func (k *kindWatch) put(obj any) error {
	m, key, err := metadataOf(obj)
	if err != nil {
		return err
	}
	k.mu.Lock()
	old, had := k.objects[key]
	k.objects[key] = m
	k.mu.Unlock()
	k.tell(old, had, m)
	return nil
}

func (k *kindWatch) Delete(obj any) error {
	_, key, err := metadataOf(obj)
	if err != nil {
		return err
	}
	k.mu.Lock()
	_, had := k.objects[key]
	delete(k.objects, key)
	k.mu.Unlock()
	if had && k.events.deleted != nil {
		k.events.deleted()
	}
	return nil
}

// Replace takes a full list: the first, or a new one after a watch broke,
// which tells what changed while it was broken.
func (k *kindWatch) Replace(list []any, _ string) error {
	objects := make(map[string]seenMeta, len(list))
	for _, obj := range list {
		m, key, err := metadataOf(obj)
		if err != nil {
			return err
		}
		objects[key] = m
	}
	k.mu.Lock()
	before := k.objects
	k.objects = objects
	k.mu.Unlock()
	if !k.listed.Swap(true) {
		return nil
	}
	for key, m := range objects {
		old, had := before[key]
		k.tell(old, had, m)
	}
	for key := range before {
		if _, ok := objects[key]; !ok && k.events.deleted != nil {
			k.events.deleted()
		}
	}
	return nil
}

func (k *kindWatch) Resync() error { return nil }

// tell reports an object seen, after the first list: added when it was
// not had before, else updated if its resourceVersion moved.
func (k *kindWatch) tell(old seenMeta, had bool, obj seenMeta) {
	switch {
	case !k.listed.Load():
	case !had:
		if k.events.added != nil {
			k.events.added()
		}
	case old.ResourceVersion != obj.ResourceVersion && k.events.updated != nil:
		k.events.updated(old, obj)
	}
}

// seenMeta is what the watch keeps of an object: what the engine asks of
// it, and whether its last write was one a hand did. Not its labels and
// annotations: an object applied with kubectl carries its whole last
// applied configuration in one (a CRD's schema, and CRDs are watched
// whole), and a chart's may be large.
type seenMeta struct {
	engine.SeenObject
	generation int64
	// quietWrite: the last write was Strata's own or one to the status.
	quietWrite bool
}

// metadataOf is what the watch keeps of a watched object, and its
// namespace/name key.
func metadataOf(obj any) (seenMeta, string, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return seenMeta{}, "", fmt.Errorf("drift watch: unexpected %T", obj)
	}
	key, err := cache.MetaNamespaceKeyFunc(m)
	latest := latestWrite(m.ManagedFields)
	return seenMeta{
		SeenObject: engine.Seeing(m),
		generation: m.Generation,
		quietWrite: latest != nil && (latest.Manager == engine.FieldManager || latest.Subresource == "status"),
	}, key, err
}

// changedByHand tells an edit worth a drift check from the noise: Strata's
// own applies and controllers writing status or noting a pod template's
// revision.
func changedByHand(old, obj seenMeta) bool {
	if old.ResourceVersion == obj.ResourceVersion {
		return false
	}
	// The written version holds the generation, labels and annotations.
	if obj.generation > 0 && obj.Version == old.Version {
		return false
	}
	return !obj.quietWrite
}

// latestWrite is the managed-fields entry written last.
func latestWrite(entries []metav1.ManagedFieldsEntry) *metav1.ManagedFieldsEntry {
	var latest *metav1.ManagedFieldsEntry
	var when time.Time
	for i := range slices.Backward(entries) {
		e := &entries[i]
		if e.Time != nil && (latest == nil || e.Time.After(when)) {
			latest, when = e, e.Time.Time
		}
	}
	return latest
}
