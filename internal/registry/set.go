package registry

import (
	"sort"
	"sync"
)

// Set is the registries a manager knows, each visible to the projects its
// namespace serves: its own, or every project for the shared namespace. It
// hands each project a Catalog over one cache and one set of loaded packs.
type Set struct {
	Cache *Cache
	// Shared is the namespace whose registries serve every project.
	Shared string
	// Folders are the packs of --packs folders, searched after registries.
	Folders Packs

	loaded Loaded
	mu     sync.RWMutex
	byKey  map[string]member
}

type member struct {
	namespace, name string
	priority        int32
	registry        *Registry
}

// Put adds or replaces the registry namespace/name.
func (s *Set) Put(namespace, name string, priority int32, r *Registry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = map[string]member{}
	}
	s.byKey[namespace+"/"+name] = member{namespace, name, priority, r}
}

// Delete forgets the registry namespace/name.
func (s *Set) Delete(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byKey, namespace+"/"+name)
}

// OnHost returns the first registry by priority that a project sees on the
// given host, for chart layers whose OCI registry is a pack registry's.
func (s *Set) OnHost(namespace, host string) (*Registry, bool) {
	for _, r := range s.For(namespace).Registries {
		if r.Endpoint.Host == host {
			return r, true
		}
	}
	return nil, false
}

// For returns the catalog a project (namespace) sees: its registries and
// the shared ones by priority (then namespace and name), then the folders.
func (s *Set) For(namespace string) *Catalog {
	s.mu.RLock()
	var visible []member
	for _, m := range s.byKey {
		if m.namespace == namespace || m.namespace == s.Shared {
			visible = append(visible, m)
		}
	}
	s.mu.RUnlock()
	sort.Slice(visible, func(i, j int) bool {
		a, b := visible[i], visible[j]
		if a.priority != b.priority {
			return a.priority < b.priority
		}
		if a.namespace != b.namespace {
			return a.namespace < b.namespace
		}
		return a.name < b.name
	})
	c := &Catalog{Cache: s.Cache, Folders: s.Folders, Loaded: &s.loaded}
	for _, m := range visible {
		c.Registries = append(c.Registries, m.registry)
		c.Names = append(c.Names, m.name)
	}
	return c
}
