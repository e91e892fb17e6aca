package engine

import (
	"crypto/sha256"
	"encoding/json"
	"runtime"
	"sync"
	"weak"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"
)

// clusterMappings maps a cluster's kinds to its resources: the mapper of
// the APIs the cluster serves, read from its discovery when first asked
// and again after Reset, and shared with every cluster that serves the
// same APIs.
type clusterMappings struct {
	discovery discovery.CachedDiscoveryInterface
	mu        sync.Mutex
	apis      *apiMappings
}

var _ meta.ResettableRESTMapper = &clusterMappings{}

// current is the mapper of the APIs the cluster served when last read.
func (c *clusterMappings) current() (*apiMappings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apis == nil {
		groups, err := restmapper.GetAPIGroupResources(c.discovery)
		if err != nil {
			return nil, err
		}
		if c.apis, err = sharedAPIs.mappings(groups); err != nil {
			return nil, err
		}
	}
	return c.apis, nil
}

// Reset forgets the cluster's APIs, and what discovery said of them, for
// the next question to read them again (as a deferred discovery mapper's
// Reset does: Helm resets the mapper after it installed CRDs).
func (c *clusterMappings) Reset() {
	c.mu.Lock()
	c.discovery.Invalidate()
	c.apis = nil
	c.mu.Unlock()
}

// askAPIs answers from the cluster's APIs; a kind they lack is looked for
// again once in APIs read anew, when discovery was invalidated since, as a
// deferred discovery mapper does.
func askAPIs[T any](c *clusterMappings, question func(*apiMappings) (T, error)) (T, error) {
	apis, err := c.current()
	if err != nil {
		var none T
		return none, err
	}
	answer, err := question(apis)
	if meta.IsNoMatchError(err) && !c.discovery.Fresh() {
		c.Reset()
		if apis, err = c.current(); err != nil {
			return answer, err
		}
		return question(apis)
	}
	return answer, err
}

func (c *clusterMappings) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	return askAPIs(c, func(m *apiMappings) (schema.GroupVersionKind, error) { return m.mapper.KindFor(r) })
}

func (c *clusterMappings) KindsFor(r schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	return askAPIs(c, func(m *apiMappings) ([]schema.GroupVersionKind, error) { return m.mapper.KindsFor(r) })
}

func (c *clusterMappings) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	return askAPIs(c, func(m *apiMappings) (schema.GroupVersionResource, error) { return m.mapper.ResourceFor(r) })
}

func (c *clusterMappings) ResourcesFor(r schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	return askAPIs(c, func(m *apiMappings) ([]schema.GroupVersionResource, error) { return m.mapper.ResourcesFor(r) })
}

func (c *clusterMappings) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return askAPIs(c, func(m *apiMappings) (*meta.RESTMapping, error) { return m.restMapping(gk, versions...) })
}

func (c *clusterMappings) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	return askAPIs(c, func(m *apiMappings) ([]*meta.RESTMapping, error) { return m.mapper.RESTMappings(gk, versions...) })
}

func (c *clusterMappings) ResourceSingularizer(resource string) (string, error) {
	return askAPIs(c, func(m *apiMappings) (string, error) { return m.mapper.ResourceSingularizer(resource) })
}

// apiMappings is the mapper of one set of APIs, with the mappings it found
// for each kind and version remembered: the mapper builds each answer
// anew, and it is asked for every object of every plan, apply and
// readiness check (a tenth of what a fleet's profile change allocated).
type apiMappings struct {
	mapper meta.RESTMapper
	mu     sync.Mutex
	known  map[schema.GroupVersionKind]*meta.RESTMapping
}

func (m *apiMappings) restMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if len(versions) != 1 {
		return m.mapper.RESTMapping(gk, versions...)
	}
	gvk := gk.WithVersion(versions[0])
	m.mu.Lock()
	found, ok := m.known[gvk]
	m.mu.Unlock()
	if ok {
		return found, nil
	}
	found, err := m.mapper.RESTMapping(gk, versions...)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.known[gvk] = found
	m.mu.Unlock()
	return found, nil
}

// sharedAPIs holds one mapper for each set of APIs some cluster serves,
// found by the digest of what discovery said: a fleet's clusters mostly
// serve the same APIs, and a mapper is some 0.2 MiB. A set no cluster
// serves any more is collected.
var sharedAPIs = apiSets{byDigest: map[[sha256.Size]byte]weak.Pointer[apiMappings]{}}

type apiSets struct {
	mu       sync.Mutex
	byDigest map[[sha256.Size]byte]weak.Pointer[apiMappings]
}

func (s *apiSets) mappings(groups []*restmapper.APIGroupResources) (*apiMappings, error) {
	// JSON sorts map keys: the same APIs give the same digest.
	doc, err := json.Marshal(groups)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(doc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.byDigest[digest].Value(); m != nil {
		return m, nil
	}
	m := &apiMappings{mapper: restmapper.NewDiscoveryRESTMapper(groups), known: map[schema.GroupVersionKind]*meta.RESTMapping{}}
	s.byDigest[digest] = weak.Make(m)
	runtime.AddCleanup(m, s.forget, digest)
	return m, nil
}

// forget drops the entry of a collected set, unless a new one took its place.
func (s *apiSets) forget(digest [sha256.Size]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byDigest[digest].Value() == nil {
		delete(s.byDigest, digest)
	}
}
