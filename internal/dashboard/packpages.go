package dashboard

import (
	"crypto/sha256"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/packview"
	"strata.dev/strata/internal/registry"
)

// PackFiles finds the folder of a pack version on the dashboard's machine
// (pack folders, the pack cache) without pulling it; a registry.PackFiles.
type PackFiles interface {
	Dir(name, version, archiveDigest string) (string, bool)
}

// packContent is what a pack version's page shows of its files, made once
// per pack version.
type packContent struct {
	Readme      template.HTML
	Values      string
	Presets     []pack.Preset
	Schema      []pack.Constraint
	Constraints *pack.Constraints
	Problem     string
}

type packPage struct {
	page
	Use     registry.PackUse
	Content packContent
	// Missing says why the pack's files are not shown.
	Missing string
	Newer   []string
	Error   string
}

// packUsage lists what the user may see of the registries' packs (and of
// the pack folders' entries given), the profiles and the clusters using
// them.
func packUsage(r *http.Request, c client.Client, folders ...v1.PackEntry) ([]registry.PackUse, string, error) {
	var regs v1.PackRegistryList
	if err := c.List(r.Context(), &regs); err != nil {
		return nil, "", err
	}
	if len(folders) > 0 {
		regs.Items = append(regs.Items, v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "pack folders"}, Status: v1.PackRegistryStatus{Entries: folders}})
	}
	var profiles v1.ClusterProfileList
	var clusters v1.ClusterList
	var problem string
	if err := c.List(r.Context(), &profiles); err != nil {
		problem = "which profiles use each pack is not shown: " + err.Error()
	}
	if err := c.List(r.Context(), &clusters); err != nil {
		problem = "which clusters run each pack is not shown: " + err.Error()
	}
	return registry.Usage(regs.Items, profiles.Items, clusters.Items), problem, nil
}

// packVersion shows one pack version: logo, README, values, presets,
// schema rules and constraints, who uses it, the newer versions.
func (s *Server) packVersion(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name, version := r.PathValue("name"), r.PathValue("version")
	uses, problem, err := packUsage(r, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	found := slices.ContainsFunc(uses, func(u registry.PackUse) bool { return u.Name == name && u.Version == version })
	if !found {
		// A pack of the manager's pack folders, which no registry lists.
		if dir, ok := s.packDir(name, version, ""); ok {
			if p, _ := pack.Load(dir); p != nil {
				uses, problem, err = packUsage(r, c, v1.PackEntry{Name: name, Version: version, Layer: string(p.Layer)})
				if err != nil {
					s.fail(w, r, err)
					return
				}
			}
		}
	}
	data := packPage{page: s.newPage(r, name+" "+version, "packs"), Error: problem}
	for _, u := range uses {
		if u.Name == name && u.Version == version {
			data.Use, found = u, true
		}
	}
	if !found {
		s.renderStatus(w, r, http.StatusNotFound, "error", errorPage{page: s.newPage(r, "No such pack", "packs"), Message: "pack " + name + " " + version + " is in no pack registry you can see"})
		return
	}
	for _, u := range uses {
		if u.Name == name && compareVersions(u.Version, version) > 0 {
			data.Newer = append(data.Newer, u.Version)
		}
	}
	dir, ok := s.packDir(name, version, data.Use.Digest)
	if !ok {
		data.Missing = "its files are not on the dashboard's machine yet: they come once a cluster uses it"
	} else {
		data.Content = s.contents.Get(dir, func() packContent { return readPackContent(dir) })
	}
	s.render(w, r, "pack", data)
}

func (s *Server) packDir(name, version, digest string) (string, bool) {
	if s.PackFiles == nil {
		return "", false
	}
	return s.PackFiles.Dir(name, version, digest)
}

func readPackContent(dir string) packContent {
	var out packContent
	p, problems := pack.Load(dir)
	if err := problems.Err(); err != nil && p == nil {
		out.Problem = err.Error()
		return out
	}
	out.Values, out.Presets, out.Schema, out.Constraints = string(p.ValuesYAML), p.Presets, p.Schema, p.Constraints
	readme, err := packview.ReadmeOf(dir)
	if err != nil {
		out.Problem = "README.md: " + err.Error()
	}
	out.Readme = readme
	return out
}

// packLogo serves a pack version's logo, re-encoded as PNG, or a drawn
// placeholder: a pack without a usable logo, a chart, a pack not on this
// machine. Only a signed-in user gets it.
func (s *Server) packLogo(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name, version := r.PathValue("name"), r.PathValue("version")
	var logo []byte
	if dir, ok := s.packDir(name, version, s.archiveDigest(r, c, name, version)); ok {
		logo = s.logos.Get(dir, func() []byte {
			png, err := packview.Logo(dir)
			if err != nil {
				return nil // the placeholder stands in
			}
			return png
		})
	}
	w.Header().Set("Cache-Control", "private, max-age=300")
	if logo == nil {
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = w.Write(packview.Placeholder(name))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(logo)
}

// archiveDigest is the digest a registry the user sees lists for a pack
// version: where it is in the pack cache. "" when none lists it. A page
// asks for the logo of each of its layers at once: what the user may see
// is read once and kept a short while.
func (s *Server) archiveDigest(r *http.Request, c client.Client, name, version string) string {
	seen, ok := s.digests.get(tokenOf(r))
	if !ok {
		var regs v1.PackRegistryList
		if err := c.List(r.Context(), &regs); err != nil {
			return ""
		}
		seen = map[string]string{}
		for _, reg := range regs.Items {
			for _, e := range reg.Status.Entries {
				if _, listed := seen[e.Name+"@"+e.Version]; !listed {
					seen[e.Name+"@"+e.Version] = e.Digest
				}
			}
		}
		s.digests.put(tokenOf(r), seen)
	}
	return seen[name+"@"+version]
}

// digestsSeen keeps, per user, the pack digests the registries they may
// see list, for digestsKept.
type digestsSeen struct {
	mu    sync.Mutex
	users map[[sha256.Size]byte]digestsOf
}

type digestsOf struct {
	digests map[string]string
	until   time.Time
}

const (
	digestsKept = 30 * time.Second
	// digestsUsers bounds the users kept; past it the expired go first,
	// then all.
	digestsUsers = 256
)

// The user is known by a hash of their token: the token itself is not
// kept.
func (d *digestsSeen) get(token string) (map[string]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.users[sha256.Sum256([]byte(token))]
	if !ok || time.Now().After(e.until) {
		return nil, false
	}
	return e.digests, true
}

func (d *digestsSeen) put(token string, digests map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.users == nil {
		d.users = map[[sha256.Size]byte]digestsOf{}
	}
	now := time.Now()
	if len(d.users) >= digestsUsers {
		maps.DeleteFunc(d.users, func(_ [sha256.Size]byte, e digestsOf) bool { return now.After(e.until) })
	}
	if len(d.users) >= digestsUsers {
		clear(d.users)
	}
	d.users[sha256.Sum256([]byte(token))] = digestsOf{digests: digests, until: now.Add(digestsKept)}
}
