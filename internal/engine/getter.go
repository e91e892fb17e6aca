package engine

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restGetter hands Helm the engine's own client configuration, with one
// cached discovery client shared by every namespace's Helm configuration.
type restGetter struct {
	config    *rest.Config
	namespace string
	discovery discovery.CachedDiscoveryInterface
	mapper    *knownMappings
}

func newRESTGetter(cfg *rest.Config) (*restGetter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	return &restGetter{
		config:    cfg,
		discovery: cached,
		mapper:    &knownMappings{DeferredDiscoveryRESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(cached)},
	}, nil
}

func (g *restGetter) forNamespace(ns string) *restGetter {
	c := *g
	c.namespace = ns
	return &c
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

// forget drops what discovery said, after a layer added kinds (CRDs).
func (g *restGetter) forget() {
	g.discovery.Invalidate()
	g.mapper.Reset()
}

// ToRawKubeConfigLoader only serves the namespace: everything else comes
// from the rest.Config.
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Contexts["strata"] = &clientcmdapi.Context{Namespace: g.namespace}
	cfg.CurrentContext = "strata"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}})
}

// knownMappings remembers the mappings found for each kind and version,
// until Reset: the deferred mapper builds each answer anew from discovery,
// and it is asked for every object of every plan, apply and readiness
// check (a tenth of what a fleet's profile change allocated).
type knownMappings struct {
	*restmapper.DeferredDiscoveryRESTMapper
	mu    sync.Mutex
	known map[schema.GroupVersionKind]*meta.RESTMapping
}

func (m *knownMappings) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if len(versions) != 1 {
		return m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	}
	gvk := gk.WithVersion(versions[0])
	m.mu.Lock()
	found, ok := m.known[gvk]
	m.mu.Unlock()
	if ok {
		return found, nil
	}
	found, err := m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.known == nil {
		m.known = map[schema.GroupVersionKind]*meta.RESTMapping{}
	}
	m.known[gvk] = found
	m.mu.Unlock()
	return found, nil
}

// Reset forgets the mappings with what discovery said.
func (m *knownMappings) Reset() {
	m.mu.Lock()
	m.known = nil
	m.mu.Unlock()
	m.DeferredDiscoveryRESTMapper.Reset()
}
