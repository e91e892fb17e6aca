package agent

import (
	"net/http"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
)

// scheme is the agent's, built once per process: it is the same for every
// agent, and a load test's hollow agents would each hold a copy.
var scheme = sync.OnceValue(controller.Scheme)

// knownKinds are the namespaced kinds an agent reads and writes on the
// management plane: its Cluster, the profiles and registries it follows,
// its Lease and report, the Secrets of registries, its events.
var knownKinds = []schema.GroupVersionKind{
	v1.GroupVersion.WithKind("Cluster"), v1.GroupVersion.WithKind("ClusterProfile"), v1.GroupVersion.WithKind("PackRegistry"),
	coordinationv1.SchemeGroupVersion.WithKind("Lease"), corev1.SchemeGroupVersion.WithKind("ConfigMap"),
	corev1.SchemeGroupVersion.WithKind("Secret"), corev1.SchemeGroupVersion.WithKind("Event"),
	eventsv1.SchemeGroupVersion.WithKind("Event"),
}

// knownFirst is the agent's REST mapper on the management plane. It maps
// knownKinds without asking the API server, and asks through discovery —
// once, when first needed — only for another kind. A mapper that discovers
// every group would cost each of ten thousand agents a discovery of the
// whole API on joining, and a quarter of a MiB to keep it.
type knownFirst struct {
	known *meta.DefaultRESTMapper

	once sync.Once
	cfg  *rest.Config
	http *http.Client
	rest meta.RESTMapper
	err  error
}

func newKnownFirst(cfg *rest.Config, httpClient *http.Client) (meta.RESTMapper, error) {
	known := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range knownKinds {
		known.Add(gvk, meta.RESTScopeNamespace)
		// The cache asks whether a list kind is namespaced, too.
		known.Add(gvk.GroupVersion().WithKind(gvk.Kind+"List"), meta.RESTScopeNamespace)
	}
	return &knownFirst{known: known, cfg: cfg, http: httpClient}, nil
}

// discovered is the mapper of everything else, made on first use.
func (m *knownFirst) discovered() (meta.RESTMapper, error) {
	m.once.Do(func() { m.rest, m.err = apiutil.NewDynamicRESTMapper(m.cfg, m.http) })
	return m.rest, m.err
}

// either answers from the known kinds, or else from discovery.
func either[T any](m *knownFirst, known func(meta.RESTMapper) (T, error)) (T, error) {
	got, err := known(m.known)
	if err == nil || !meta.IsNoMatchError(err) {
		return got, err
	}
	rest, derr := m.discovered()
	if derr != nil {
		return got, derr
	}
	return known(rest)
}

func (m *knownFirst) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	return either(m, func(x meta.RESTMapper) (schema.GroupVersionKind, error) { return x.KindFor(r) })
}

func (m *knownFirst) KindsFor(r schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	return either(m, func(x meta.RESTMapper) ([]schema.GroupVersionKind, error) { return x.KindsFor(r) })
}

func (m *knownFirst) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	return either(m, func(x meta.RESTMapper) (schema.GroupVersionResource, error) { return x.ResourceFor(r) })
}

func (m *knownFirst) ResourcesFor(r schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	return either(m, func(x meta.RESTMapper) ([]schema.GroupVersionResource, error) { return x.ResourcesFor(r) })
}

func (m *knownFirst) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return either(m, func(x meta.RESTMapper) (*meta.RESTMapping, error) { return x.RESTMapping(gk, versions...) })
}

func (m *knownFirst) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	return either(m, func(x meta.RESTMapper) ([]*meta.RESTMapping, error) { return x.RESTMappings(gk, versions...) })
}

func (m *knownFirst) ResourceSingularizer(resource string) (string, error) {
	return either(m, func(x meta.RESTMapper) (string, error) { return x.ResourceSingularizer(resource) })
}

// managementClient is a client of the management plane with the agent's
// scheme and mapper, for reads outside the agent's manager.
func managementClient(cfg *rest.Config) (client.Client, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := newKnownFirst(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme(), HTTPClient: httpClient, Mapper: mapper})
}
