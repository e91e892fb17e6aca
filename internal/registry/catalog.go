package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"oras.land/oras-go/v2/errdef"

	"strata.dev/strata/internal/pack"
)

// Catalog finds packs in registries, in priority order, then in pack
// folders; it is what the stack resolver reads packs from. Pack content
// stays on disk in the cache; only the packs in use are held in memory.
type Catalog struct {
	Registries []*Registry
	Cache      *Cache
	// Folders holds the packs of folders given with --packs; may be nil.
	Folders *pack.Catalog
	// Timeout bounds each registry request; 30 s when zero.
	Timeout time.Duration

	mu     sync.Mutex
	loaded map[string]*pack.Pack // by archive digest
}

// Pack returns the pack NAME VERSION. The same name and version with other
// content in two registries is an error naming both.
func (c *Catalog) Pack(name, version string) (*pack.Pack, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var found *Pulled
	var foundIn *Registry
	var failures []string
	for _, r := range c.Registries {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		pulled, err := r.Pull(ctx, c.Cache, name, version)
		cancel()
		switch {
		case errors.Is(err, errdef.ErrNotFound):
			continue
		case err != nil:
			failures = append(failures, err.Error())
			continue
		case found == nil:
			found, foundIn = &pulled, r
		case found.Digest != pulled.Digest:
			return nil, fmt.Errorf("pack %s %s differs between registries: %s has %s, %s has %s", name, version, foundIn.Endpoint, found.Digest, r.Endpoint, pulled.Digest)
		}
	}
	if found != nil {
		return c.load(*found, foundIn)
	}
	if c.Folders != nil {
		p, err := c.Folders.Pack(name, version)
		if err == nil || len(failures) == 0 {
			return p, err
		}
	}
	if len(failures) > 0 {
		return nil, fmt.Errorf("pack %s %s: %s", name, version, strings.Join(failures, "; "))
	}
	var where []string
	for _, r := range c.Registries {
		where = append(where, r.Endpoint.String())
	}
	return nil, fmt.Errorf("pack %s %s not found in the registries %s", name, version, strings.Join(where, ", "))
}

// load reads a pulled pack once per content and checks that it is the pack
// its tag says.
func (c *Catalog) load(pulled Pulled, r *Registry) (*pack.Pack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.loaded[pulled.Digest]; ok && p.Name == pulled.Name && p.Version == pulled.Version {
		return p, nil
	}
	p, problems := pack.Load(pulled.Dir)
	where := fmt.Sprintf("%s:%s (%s)", r.Endpoint.PackRepository(pulled.Name), pulled.Version, pulled.Digest)
	if err := problems.Err(); err != nil {
		return nil, fmt.Errorf("pack %s is broken:\n%w", where, err)
	}
	if p.Name != pulled.Name || p.Version != pulled.Version {
		return nil, fmt.Errorf("%s holds pack %s %s: the repository and tag must be its name and version", where, p.Name, p.Version)
	}
	p.Digest = pulled.Digest
	if c.loaded == nil {
		c.loaded = map[string]*pack.Pack{}
	}
	c.loaded[pulled.Digest] = p
	return p, nil
}
