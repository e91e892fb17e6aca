package pack

import (
	"fmt"
	"sort"
	"strings"
)

// Catalog is a set of packs indexed by name and version, read from folders.
type Catalog struct {
	packs map[string]*Pack
	// broken holds the errors of packs that failed to load, by name@version
	// when known, so a profile using one gets the real reason.
	broken map[string]error
	dirs   []string
}

// LoadCatalog reads every pack under dirs (each a pack or a folder of packs).
// Broken packs do not stop the others; asking for one returns its errors.
func LoadCatalog(dirs ...string) (*Catalog, error) {
	c := &Catalog{packs: map[string]*Pack{}, broken: map[string]error{}, dirs: dirs}
	for _, dir := range dirs {
		paths, err := Discover(dir)
		if err != nil {
			return nil, fmt.Errorf("--packs %s: %w", dir, err)
		}
		for _, path := range paths {
			p, problems := Load(path)
			if p == nil {
				continue
			}
			key := p.Name + "@" + p.Version
			if err := problems.Err(); err != nil {
				c.broken[key] = err
				continue
			}
			if _, dup := c.packs[key]; !dup {
				c.packs[key] = p
			}
		}
	}
	return c, nil
}

// Pack returns the pack of that name and version.
func (c *Catalog) Pack(name, version string) (*Pack, error) {
	key := name + "@" + version
	if p, ok := c.packs[key]; ok {
		return p, nil
	}
	if err := c.broken[key]; err != nil {
		return nil, fmt.Errorf("pack %s %s is broken:\n%w", name, version, err)
	}
	var versions []string
	for _, p := range c.packs {
		if p.Name == name {
			versions = append(versions, p.Version)
		}
	}
	sort.Strings(versions)
	where := "the pack folders given (--packs " + strings.Join(c.dirs, ", ") + ")"
	if len(c.dirs) == 0 {
		where = "any pack folder: pass --packs DIR"
	}
	if len(versions) > 0 {
		return nil, fmt.Errorf("pack %s %s not found in %s; versions there: %s", name, version, where, strings.Join(versions, ", "))
	}
	return nil, fmt.Errorf("pack %s %s not found in %s", name, version, where)
}

// Len is the number of usable packs.
func (c *Catalog) Len() int { return len(c.packs) }
