package engine

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restGetter hands Helm the engine's own client configuration, with one
// cached discovery client shared by every namespace's Helm configuration.
type restGetter struct {
	config    *rest.Config
	namespace string
	discovery discovery.CachedDiscoveryInterface
	mapper    *clusterMappings
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
		mapper:    &clusterMappings{discovery: cached},
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
func (g *restGetter) forget() { g.mapper.Reset() }

// ToRawKubeConfigLoader only serves the namespace: everything else comes
// from the rest.Config.
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Contexts["strata"] = &clientcmdapi.Context{Namespace: g.namespace}
	cfg.CurrentContext = "strata"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: g.namespace}})
}
