package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// Names are the names a layer's pack.registry may use for each of
	// Registries (the PackRegistry's name; offline, its oci:// endpoint).
	Names []string
	Cache *Cache
	// Folders finds the packs of folders given with --packs; may be nil.
	Folders Packs
	// Timeout bounds each registry request; 30 s when zero.
	Timeout time.Duration
	// Loaded keeps the packs read, by content; shared by the catalogs of a
	// Set. A zero Catalog makes its own.
	Loaded *Loaded
}

// Packs finds packs by name and version, as the stack resolver asks.
type Packs interface {
	Pack(name, version string) (*pack.Pack, error)
}

// Loaded holds packs read from the cache, by the digest of their archive.
type Loaded struct {
	mu    sync.Mutex
	packs map[string]*pack.Pack
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
	// Not in the folders either: say where it was looked for, the
	// registries first (folders with no pack are not worth naming).
	folders := ""
	if c.Folders != nil && !isNilCatalog(c.Folders) {
		p, err := c.Folders.Pack(name, version)
		if err == nil || (len(failures) == 0 && len(c.Registries) == 0) {
			return p, err
		}
		if counted, ok := c.Folders.(interface{ Len() int }); !ok || counted.Len() > 0 {
			folders = "; " + err.Error()
		}
	}
	if len(failures) > 0 {
		return nil, fmt.Errorf("pack %s %s: %s%s", name, version, strings.Join(failures, "; "), folders)
	}
	if len(c.Registries) == 0 {
		return nil, fmt.Errorf("pack %s %s: no pack registry serves this project and no pack folder is given", name, version)
	}
	var where []string
	for _, r := range c.Registries {
		where = append(where, r.Endpoint.String())
	}
	return nil, fmt.Errorf("pack %s %s not found in the registries %s%s", name, version, strings.Join(where, ", "), folders)
}

// PackFrom returns the pack NAME VERSION from the registry of that name only.
func (c *Catalog) PackFrom(registryName, name, version string) (*pack.Pack, error) {
	var known []string
	for i, r := range c.Registries {
		n := r.Endpoint.String()
		if i < len(c.Names) {
			n = c.Names[i]
		}
		known = append(known, n)
		if n != registryName {
			continue
		}
		if c.Loaded == nil {
			c.Loaded = &Loaded{} // shared with the one-registry view below
		}
		only := &Catalog{Registries: []*Registry{r}, Names: []string{n}, Cache: c.Cache, Timeout: c.Timeout, Loaded: c.Loaded}
		return only.Pack(name, version)
	}
	if len(known) == 0 {
		return nil, fmt.Errorf("pack %s %s: registry %q: no pack registry serves this project", name, version, registryName)
	}
	return nil, fmt.Errorf("pack %s %s: no registry %q here; registries: %s", name, version, registryName, strings.Join(known, ", "))
}

// load reads a pulled pack once per content and checks that it is the pack
// its tag says.
func (c *Catalog) load(pulled Pulled, r *Registry) (*pack.Pack, error) {
	if c.Loaded == nil {
		c.Loaded = &Loaded{}
	}
	l := c.Loaded
	l.mu.Lock()
	defer l.mu.Unlock()
	ref := "oci://" + r.Endpoint.PackRepository(pulled.Name) + ":" + pulled.Version
	if p, ok := l.packs[pulled.Digest]; ok && p.Name == pulled.Name && p.Version == pulled.Version && p.Path == pulled.Dir {
		return withStaleWarning(p, pulled, ref), nil
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
	if l.packs == nil {
		l.packs = map[string]*pack.Pack{}
	}
	l.packs[pulled.Digest] = p
	return withStaleWarning(p, pulled, ref), nil
}

// withStaleWarning adds to a copy of the pack a warning that it was served
// from the cache because the registry could not give it (down, or the
// version deleted), so profiles and clusters say so while they run on.
func withStaleWarning(p *pack.Pack, pulled Pulled, ref string) *pack.Pack {
	if !pulled.Stale {
		return p
	}
	cp := *p
	why := "the registry cannot be reached"
	if errors.Is(pulled.Err, errdef.ErrNotFound) {
		why = "the version is no longer in the registry"
	}
	cp.Warnings = append(slices.Clone(p.Warnings), pack.Problem{Severity: pack.Warning, File: ref,
		Message: fmt.Sprintf("used from the cache (%s): %v", why, pulled.Err)})
	return &cp
}

// isNilCatalog tells a nil *pack.Catalog stored in the interface.
func isNilCatalog(p Packs) bool {
	c, ok := p.(*pack.Catalog)
	return ok && c == nil
}
