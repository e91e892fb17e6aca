package engine

import (
	"bytes"
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
// generated secret. It keeps each layer's objects as parsed too: parsing
// the YAML cost as much as rendering it.
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
	key string
	rendered
}

// rendered is a layer's manifest and its objects as parsed. Shared between
// clusters: the objects are read, never changed.
type rendered struct {
	manifest string
	objects  []object
	// digests are those of the layers this render is, which the
	// clusters sharing it share: hashing a large manifest at every plan
	// of every cluster was over a quarter of a plan's CPU time.
	digests *sync.Map // digestPrefix -> digest
}

// digest is the layer's digest (see digest), computed once per render.
func (r rendered) digest(ch *chartv2.Chart, packDigest string) string {
	prefix := digestPrefix(ch, packDigest)
	if d, ok := r.digests.Load(prefix); ok {
		return d.(string)
	}
	d := digest(ch, r.manifest, packDigest)
	r.digests.Store(prefix, d)
	return d
}

// size is what an entry is charged: the manifest, and its objects, which
// take about twice its bytes (measured with argo-rollouts' CRDs).
func (r rendered) size() int { return 3 * len(r.manifest) }

type renderCall struct {
	done chan struct{}
	rendered
	err error
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

// render returns what key renders to, computing it with fn once however
// many callers ask at the same time. An empty key is never cached.
func (c *RenderCache) render(key string, fn func() (rendered, error)) (rendered, error) {
	if c == nil || key == "" {
		return fn()
	}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		c.hits++
		r := el.Value.(*renderEntry).rendered
		c.mu.Unlock()
		return r, nil
	}
	if call, ok := c.rendering[key]; ok {
		c.hits++
		c.mu.Unlock()
		<-call.done
		return call.rendered, call.err
	}
	call := &renderCall{done: make(chan struct{})}
	c.rendering[key] = call
	c.misses++
	c.mu.Unlock()

	call.rendered, call.err = fn()
	close(call.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rendering, key)
	if call.err == nil && call.size() <= c.maxBytes {
		c.entries[key] = c.lru.PushFront(&renderEntry{key: key, rendered: call.rendered})
		c.bytes += call.size()
		for c.bytes > c.maxBytes {
			last := c.lru.Back()
			e := last.Value.(*renderEntry)
			c.lru.Remove(last)
			delete(c.entries, e.key)
			c.bytes -= e.size()
		}
	}
	return call.rendered, call.err
}

// renderLayer renders a layer's chart and parses its objects, through the
// shared cache when the engine has one. The objects may be another
// cluster's too: they are not to be changed.
func (e *Engine) renderLayer(ch *chartv2.Chart, values map[string]any, name, ns string, caps *common.Capabilities) (rendered, error) {
	fn := func() (rendered, error) {
		manifest, err := render.Chart(ch, values, name, ns, caps)
		if err != nil {
			return rendered{}, fmt.Errorf("does not render: %w", err)
		}
		objs, err := parseObjects(manifest)
		if err != nil {
			return rendered{}, fmt.Errorf("rendered objects do not parse: %w", err)
		}
		return rendered{manifest: manifest, objects: objs, digests: &sync.Map{}}, nil
	}
	if e.opts.Renders == nil {
		return fn()
	}
	return e.opts.Renders.render(renderKey(ch, values, name, ns, caps), fn)
}

// unshareable finds template functions whose output differs between two
// renders of the same input, or depends on the cluster. It is matched
// against template actions only: text outside {{ }} is printed as it is,
// and CRDs are full of "type: date" and "format: date-time".
var unshareable = regexp.MustCompile(`\b(rand[A-Za-z]*|uuidv4|genCA|genCAWithKey|genPrivateKey|genSelfSignedCert|genSelfSignedCertWithKey|genSignedCert|genSignedCertWithKey|derivePassword|now|date|dateInZone|unixEpoch|lookup|htpasswd|bcrypt)\b`)

// tplCall finds templates that render other text (files, values) as
// templates.
var tplCall = regexp.MustCompile(`\btpl\b`)

// templateActions returns the text inside a template's actions ({{ … }}),
// one per line, string literals included (tpl may render them). A "}}"
// inside a quoted string does not end an action.
func templateActions(text []byte) []byte {
	var out []byte
	for {
		start := bytes.Index(text, []byte("{{"))
		if start < 0 {
			return out
		}
		text = text[start+2:]
		end := actionEnd(text)
		out = append(append(out, text[:end]...), '\n')
		text = text[min(end+2, len(text)):]
	}
}

// actionEnd is where the action text begins closes: the index of its
// "}}", or len(text) when it is never closed.
func actionEnd(text []byte) int {
	var quote byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote == '"' && c == '\\':
			i++ // an escaped character, perhaps a quote
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '`':
			quote = c
		case c == '}' && i+1 < len(text) && text[i+1] == '}':
			return i
		}
	}
	return len(text)
}

// apisRead finds templates that may read which APIs the cluster serves:
// .Capabilities.APIVersions, or the capabilities handed on whole. Only
// those charts render differently on clusters with other CRDs; the others
// are shared across a fleet whose clusters each serve a few of their own.
var apisRead = regexp.MustCompile(`\bAPIVersions\b|\bCapabilities\b([^.]|$)`)

// chartReads is what hashChart found a chart's templates read besides
// its values.
type chartReads struct {
	// tpl: they render other text (files, values) as templates.
	tpl bool
	// apis: they may read the APIs the cluster serves.
	apis bool
}

// renderKey is the digest of what rendering ch with values as release name
// in ns on a cluster of caps reads (its Kubernetes version, and the APIs
// it serves if the chart asks); empty when the chart must be rendered
// each time.
func renderKey(ch *chartv2.Chart, values map[string]any, name, ns string, caps *common.Capabilities) string {
	h := sha256.New()
	var reads chartReads
	if !hashChart(h, ch, &reads) {
		return ""
	}
	// Map keys come out sorted: equal values, equal bytes. Values that a
	// tpl call renders must be deterministic too.
	v, err := json.Marshal(values)
	if err != nil {
		return ""
	}
	if reads.tpl {
		actions := templateActions(v)
		if unshareable.Match(actions) {
			return ""
		}
		reads.apis = reads.apis || apisRead.Match(actions)
	}
	fmt.Fprintf(h, "values %d\n%s\nrelease %s %s kubernetes %s\n", len(v), v, name, ns, caps.KubeVersion.Version)
	if reads.apis {
		apis := slices.Clone([]string(caps.APIVersions))
		slices.Sort(apis)
		fmt.Fprintf(h, "apis %s\n", strings.Join(apis, ","))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hashChart writes a chart and its subcharts into h, and says whether it
// may be shared; reads gathers what its templates read.
func hashChart(h hash.Hash, ch *chartv2.Chart, reads *chartReads) bool {
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
		actions := templateActions(t.Data)
		if unshareable.Match(actions) {
			return false
		}
		renderFiles = renderFiles || tplCall.Match(actions)
		reads.apis = reads.apis || apisRead.Match(actions)
		fmt.Fprintf(h, "template %s %d\n", t.Name, len(t.Data))
		h.Write(t.Data)
	}
	reads.tpl = reads.tpl || renderFiles
	files := append(ch.Files[:0:0], ch.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for _, f := range files {
		if renderFiles {
			actions := templateActions(f.Data)
			if unshareable.Match(actions) {
				return false
			}
			reads.apis = reads.apis || apisRead.Match(actions)
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
		if !hashChart(h, d, reads) {
			return false
		}
	}
	return true
}
