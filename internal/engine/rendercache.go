package engine

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	"strata.dev/strata/internal/render"
)

// RenderCache keeps rendered layers by the digest of everything rendering
// reads — the chart's templates and files, the final values, the release
// name and namespace, the Kubernetes version — so the engines of many
// clusters render a layer they share once. What a layer knows of its
// cluster (.Spectro.cluster, the API server) is in its values, so two
// clusters share a render only when it cannot differ between them. Charts
// whose templates draw random values, generate keys or read the clock or
// the cluster are rendered each time: a cluster must not get another's
// generated secret.
type RenderCache struct {
	maxBytes int

	mu      sync.Mutex
	bytes   int
	entries map[string]*list.Element
	lru     *list.List // of *renderEntry, most recent first
	hits    int64
	misses  int64
	// rendering holds the renders in progress, so concurrent reconciles of
	// the same layer render it once.
	rendering map[string]*renderCall
}

type renderEntry struct {
	key      string
	manifest string
}

type renderCall struct {
	done     chan struct{}
	manifest string
	err      error
}

// DefaultRenderCacheBytes bounds a render cache when no size is given.
const DefaultRenderCacheBytes = 64 << 20

// NewRenderCache returns a cache holding at most maxBytes of manifests
// (DefaultRenderCacheBytes when zero or less), least recently used first out.
func NewRenderCache(maxBytes int) *RenderCache {
	if maxBytes <= 0 {
		maxBytes = DefaultRenderCacheBytes
	}
	return &RenderCache{maxBytes: maxBytes, entries: map[string]*list.Element{}, lru: list.New(), rendering: map[string]*renderCall{}}
}

// Stats says how many renders were answered from the cache and how many
// were computed.
func (c *RenderCache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// render returns the manifest for key, computing it with fn once however
// many callers ask at the same time. An empty key is never cached.
func (c *RenderCache) render(key string, fn func() (string, error)) (string, error) {
	if c == nil || key == "" {
		return fn()
	}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		c.hits++
		m := el.Value.(*renderEntry).manifest
		c.mu.Unlock()
		return m, nil
	}
	if call, ok := c.rendering[key]; ok {
		c.hits++
		c.mu.Unlock()
		<-call.done
		return call.manifest, call.err
	}
	call := &renderCall{done: make(chan struct{})}
	c.rendering[key] = call
	c.misses++
	c.mu.Unlock()

	call.manifest, call.err = fn()
	close(call.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rendering, key)
	if call.err == nil && len(call.manifest) <= c.maxBytes {
		c.entries[key] = c.lru.PushFront(&renderEntry{key: key, manifest: call.manifest})
		c.bytes += len(call.manifest)
		for c.bytes > c.maxBytes {
			last := c.lru.Back()
			e := last.Value.(*renderEntry)
			c.lru.Remove(last)
			delete(c.entries, e.key)
			c.bytes -= len(e.manifest)
		}
	}
	return call.manifest, call.err
}

// renderChart renders a layer's chart, through the shared cache when the
// engine has one.
func (e *Engine) renderChart(ch *chartv2.Chart, values map[string]any, name, ns string, caps *common.Capabilities) (string, error) {
	fn := func() (string, error) { return render.Chart(ch, values, name, ns, caps) }
	if e.opts.Renders == nil {
		return fn()
	}
	return e.opts.Renders.render(renderKey(ch, values, name, ns, caps), fn)
}

// unshareable finds template functions whose output differs between two
// renders of the same input, or depends on the cluster.
var unshareable = regexp.MustCompile(`\b(rand[A-Za-z]*|uuidv4|genCA|genCAWithKey|genPrivateKey|genSelfSignedCert|genSelfSignedCertWithKey|genSignedCert|genSignedCertWithKey|derivePassword|now|date|dateInZone|unixEpoch|lookup|htpasswd|bcrypt)\b`)

// tplCall finds templates that render other text (files, values) as
// templates.
var tplCall = regexp.MustCompile(`\btpl\b`)

// renderKey is the digest of what rendering ch with values as release name
// in ns on a cluster of caps reads (its Kubernetes version and the APIs it
// serves); empty when the chart must be rendered each time.
func renderKey(ch *chartv2.Chart, values map[string]any, name, ns string, caps *common.Capabilities) string {
	h := sha256.New()
	if !hashChart(h, ch) {
		return ""
	}
	// Map keys come out sorted: equal values, equal bytes. Values a tpl
	// call renders must be deterministic too.
	v, err := json.Marshal(values)
	if err != nil || unshareable.Match(v) {
		return ""
	}
	apis := slices.Clone([]string(caps.APIVersions))
	slices.Sort(apis)
	fmt.Fprintf(h, "values %d\n%s\nrelease %s %s kubernetes %s\napis %s\n", len(v), v, name, ns, caps.KubeVersion.Version, strings.Join(apis, ","))
	return hex.EncodeToString(h.Sum(nil))
}

// hashChart writes a chart and its subcharts into h, and says whether it
// may be shared.
func hashChart(h hash.Hash, ch *chartv2.Chart) bool {
	if ch == nil || ch.Metadata == nil {
		return false
	}
	meta, err := json.Marshal(ch.Metadata)
	if err != nil {
		return false
	}
	fmt.Fprintf(h, "chart %d\n%s\n", len(meta), meta)
	templates := append(ch.Templates[:0:0], ch.Templates...)
	sort.Slice(templates, func(i, j int) bool { return templates[i].Name < templates[j].Name })
	renderFiles := false // a template that tpl's renders text it reads
	for _, t := range templates {
		if unshareable.Match(t.Data) {
			return false
		}
		renderFiles = renderFiles || tplCall.Match(t.Data)
		fmt.Fprintf(h, "template %s %d\n", t.Name, len(t.Data))
		h.Write(t.Data)
	}
	files := append(ch.Files[:0:0], ch.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for _, f := range files {
		if renderFiles && unshareable.Match(f.Data) {
			return false
		}
		fmt.Fprintf(h, "file %s %d\n", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	for _, crd := range ch.CRDObjects() {
		fmt.Fprintf(h, "crd %s %d\n", crd.Filename, len(crd.File.Data))
		h.Write(crd.File.Data)
	}
	defaults, err := json.Marshal(ch.Values)
	if err != nil {
		return false
	}
	fmt.Fprintf(h, "defaults %d\n%s\n", len(defaults), defaults)
	deps := ch.Dependencies()
	fmt.Fprintf(h, "dependencies %d\n", len(deps))
	for _, d := range deps {
		if !hashChart(h, d) {
			return false
		}
	}
	return true
}
