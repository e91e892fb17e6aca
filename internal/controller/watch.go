package controller

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
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
type driftWatch struct {
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	stop      func()
	// apisChanged is set when a CRD or APIService changed, or a watch
	// broke (the API server may have restarted on a new version).
	apisChanged atomic.Bool
}

// APIsChanged says whether the cluster's APIs may have changed since it
// was last asked.
func (w *driftWatch) APIsChanged() bool { return w.apisChanged.Swap(false) }

// Seen is what the watch last saw of the object, for the kinds watched.
func (w *driftWatch) Seen(gvr schema.GroupVersionResource, namespace, name string) (engine.SeenObject, bool) {
	inf, ok := w.informers[gvr]
	if !ok || !inf.HasSynced() {
		return engine.SeenObject{}, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, exists, err := inf.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return engine.SeenObject{}, false
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return engine.SeenObject{}, false
	}
	return engine.Seeing(m), true
}

// watchDrift starts a driftWatch; it runs until its stop is called.
func watchDrift(cfg *rest.Config, changed func()) (*driftWatch, error) {
	// Uncompressed: each compressed watch stream holds a decompressor of
	// some 40 KiB, more than the metadata it carries.
	cfg = rest.CopyConfig(cfg)
	cfg.DisableCompression = true
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	factory := metadatainformer.NewFilteredSharedInformerFactory(client, 0, metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.LabelSelector = layerObjects
	})
	handler := cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, obj any) {
			if changedByHand(old, obj) {
				changed()
			}
		},
		DeleteFunc: func(any) { changed() },
	}
	w := &driftWatch{informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{}}
	apis := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(_ any, initial bool) {
			if !initial {
				w.apisChanged.Store(true)
			}
		},
		UpdateFunc: func(old, obj any) {
			w.apisChanged.Store(true)
			handler.OnUpdate(old, obj)
		},
		DeleteFunc: func(obj any) {
			w.apisChanged.Store(true)
			handler.OnDelete(obj)
		},
	}
	broken := func(ctx context.Context, r *cache.Reflector, err error) {
		w.apisChanged.Store(true)
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}
	everything := metadatainformer.NewSharedInformerFactory(client, 0)
	for _, f := range []struct {
		factory metadatainformer.SharedInformerFactory
		kinds   []schema.GroupVersionResource
		handler cache.ResourceEventHandler
	}{{factory, watchedKinds, handler}, {everything, apiKinds, apis}} {
		for _, gvr := range f.kinds {
			inf := f.factory.ForResource(gvr).Informer()
			if _, err := inf.AddEventHandler(f.handler); err != nil {
				return nil, err
			}
			if err := inf.SetWatchErrorHandlerWithContext(broken); err != nil {
				return nil, err
			}
			if err := inf.SetTransform(withoutFieldSets); err != nil {
				return nil, err
			}
			w.informers[gvr] = inf
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	everything.Start(ctx.Done())
	w.stop = func() {
		cancel()
		factory.Shutdown()
		everything.Shutdown()
	}
	return w, nil
}

// withoutFieldSets drops the field sets of an object's managed fields
// before the watch keeps it: who wrote it and when is all it reads, and
// the sets (a CRD's whole schema) are most of an object's metadata.
func withoutFieldSets(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		for i := range m.ManagedFields {
			m.ManagedFields[i].FieldsV1 = nil
		}
	}
	return obj, nil
}

// changedByHand tells an edit worth a drift check from the noise: Strata's
// own applies and controllers writing status.
func changedByHand(old, obj any) bool {
	o, ok1 := old.(*metav1.PartialObjectMetadata)
	n, ok2 := obj.(*metav1.PartialObjectMetadata)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return false
	}
	if n.Generation > 0 && n.Generation == o.Generation && labelsAndAnnotationsEqual(o, n) {
		return false // status or metadata the controllers keep
	}
	latest := latestWrite(n.ManagedFields)
	return latest == nil || (latest.Manager != engine.FieldManager && latest.Subresource != "status")
}

func labelsAndAnnotationsEqual(a, b *metav1.PartialObjectMetadata) bool {
	return mapsEqual(a.Labels, b.Labels) && mapsEqual(a.Annotations, b.Annotations)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
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
