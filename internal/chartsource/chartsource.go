// Package chartsource fetches what chart and Zarf layers name from outside
// the profile: Helm charts from Helm HTTP repositories (index.yaml) and OCI
// registries, with Helm's own repository and registry clients (kept in
// memory, keyed by repository, name and version), and Zarf packages
// published to OCI registries, with oras-go.
package chartsource

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/zarf"
)

// Options configure a Fetcher.
type Options struct {
	// PlainHTTP talks to OCI registries without TLS (registries on loopback,
	// in tests and air-gapped labs).
	PlainHTTP bool
	// Access, when set, says how to reach an OCI registry host a chart layer
	// names (the credentials of a pack registry on the same host); hosts it
	// does not know use the Docker config file's credentials.
	Access func(host string) (HostAccess, bool)
	// ZarfDir keeps Zarf packages pulled from registries, by manifest
	// digest; empty keeps them in memory for the fetcher's life.
	ZarfDir string
	// Architecture picks a Zarf package's manifest from its index; empty is
	// this machine's.
	Architecture string
}

// HostAccess is how to reach one OCI registry host.
type HostAccess struct {
	Username, Password string
	PlainHTTP          bool
	// HTTPClient carries the host's TLS settings (its CA); nil for the default.
	HTTPClient *http.Client
}

// Fetcher fetches charts.
type Fetcher struct {
	opts  Options
	mu    sync.Mutex
	cache map[string]*chartv2.Chart
	zarf  map[digest.Digest]*zarf.Source
	// zarfRefs is what each Zarf reference last resolved to.
	zarfRefs map[string]digest.Digest
}

// New returns a fetcher.
func New(opts Options) *Fetcher {
	return &Fetcher{opts: opts, cache: map[string]*chartv2.Chart{}, zarf: map[digest.Digest]*zarf.Source{}, zarfRefs: map[string]digest.Digest{}}
}

// Fetch returns the chart a layer names. With src.Verify set, trust must
// accept the signature of the chart's manifest: it is checked before any
// of the chart is read, and the chart is then read by the digest checked,
// so a tag moved meanwhile cannot slip another chart in.
func (f *Fetcher) Fetch(src *v1.ChartSource, trust signature.Verifier) (*chartv2.Chart, error) {
	oci := strings.HasPrefix(src.Repository, "oci://")
	switch {
	case src.Verify != nil && !oci:
		return nil, fmt.Errorf("chart %s %s from %s: chart.verify needs an oci:// repository: signatures are read from the OCI registry", src.Name, src.Version, src.Repository)
	case src.Verify != nil && trust == nil:
		// Never trusted by accident: whoever resolved the stack did not
		// build what verify names.
		return nil, fmt.Errorf("chart oci://%s: chart.verify is set, and nothing to check its signature with was given", ociRef(src))
	}
	key := src.Repository + "|" + src.Name + "|" + src.Version
	if trust != nil {
		key += "|" + trust.ID()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.cache[key]; ok {
		return c, nil
	}
	var data []byte
	var err error
	switch {
	case trust != nil:
		data, err = f.pullVerified(src, trust)
	case oci:
		data, err = f.pullOCI(src)
	default:
		data, err = f.downloadHTTP(src)
	}
	if err != nil {
		return nil, err
	}
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s from %s is not a valid chart archive: %w", src.Name, src.Version, src.Repository, err)
	}
	f.cache[key] = c
	return c, nil
}

// ociRef is repository[/name]:version.
func ociRef(src *v1.ChartSource) string {
	ref := strings.TrimPrefix(strings.TrimSuffix(src.Repository, "/"), "oci://")
	if src.Name != "" && !strings.HasSuffix(ref, "/"+src.Name) {
		ref += "/" + src.Name
	}
	return ref + ":" + src.Version
}

func (f *Fetcher) pullOCI(src *v1.ChartSource) ([]byte, error) {
	var opts []registry.ClientOption
	plain := f.opts.PlainHTTP
	if f.opts.Access != nil {
		host, _, _ := strings.Cut(ociRef(src), "/")
		if a, ok := f.opts.Access(host); ok {
			plain = plain || a.PlainHTTP
			if a.Username != "" || a.Password != "" {
				opts = append(opts, registry.ClientOptBasicAuth(a.Username, a.Password))
			}
			if a.HTTPClient != nil {
				opts = append(opts, registry.ClientOptHTTPClient(a.HTTPClient))
			}
		}
	}
	if plain {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	res, err := client.Pull(ociRef(src))
	if err != nil {
		return nil, fmt.Errorf("pull chart %s from OCI registry: %w", ociRef(src), err)
	}
	return res.Chart.Data, nil
}

// maxChartBytes bounds a chart archive read from a registry.
const maxChartBytes = 64 << 20

// pullVerified resolves an OCI chart's tag, has trust check the manifest
// it points at, then reads the chart layer of that manifest.
func (f *Fetcher) pullVerified(src *v1.ChartSource, trust signature.Verifier) ([]byte, error) {
	ref := "oci://" + ociRef(src)
	repo, err := f.repository("chart", ref)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	desc, err := repo.Resolve(ctx, repo.Reference.Reference)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ref, err)
	}
	name := repo.Reference.Registry + "/" + repo.Reference.Repository
	if err := trust.Verify(ctx, repo, name, desc); err != nil {
		if signature.IsRefusal(err) {
			return nil, fmt.Errorf("chart %s (%s): %w", ref, desc.Digest, err)
		}
		return nil, fmt.Errorf("chart %s (%s): check its signature: %w", ref, desc.Digest, err)
	}
	if desc.Size > 4<<20 {
		return nil, fmt.Errorf("chart %s (%s): manifest of %d bytes is not a chart's", ref, desc.Digest, desc.Size)
	}
	raw, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return nil, fmt.Errorf("chart %s (%s): manifest: %w", ref, desc.Digest, err)
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("chart %s (%s): manifest: %w", ref, desc.Digest, err)
	}
	for _, l := range manifest.Layers {
		if l.MediaType != registry.ChartLayerMediaType {
			continue
		}
		if l.Size > maxChartBytes {
			return nil, fmt.Errorf("chart %s (%s): chart archive of %d bytes, more than %d", ref, desc.Digest, l.Size, maxChartBytes)
		}
		data, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return nil, fmt.Errorf("chart %s (%s): chart archive: %w", ref, desc.Digest, err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("chart %s (%s): no layer of media type %s: not a Helm chart", ref, desc.Digest, registry.ChartLayerMediaType)
}

func (f *Fetcher) downloadHTTP(src *v1.ChartSource) ([]byte, error) {
	providers := getter.Providers{{Schemes: []string{"http", "https"}, New: getter.NewHTTPGetter}}
	url, err := repo.FindChartInRepoURL(src.Repository, src.Name, providers, repo.WithChartVersion(src.Version))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", src.Name, src.Version, err)
	}
	g, err := getter.NewHTTPGetter()
	if err != nil {
		return nil, err
	}
	buf, err := g.Get(url)
	if err != nil {
		return nil, fmt.Errorf("download chart %s %s from %s: %w", src.Name, src.Version, url, err)
	}
	return buf.Bytes(), nil
}
