package chartsource

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"strata.dev/strata/internal/zarf"
)

// Zarf's published layout, as `zarf package publish` writes it: the tag is
// an image index with one manifest per architecture (platform os "multi"),
// or, from older Zarf, the manifest itself; the manifest's config has the
// Zarf config media type and every file of the package is one layer of the
// Zarf blob media type, titled with its path inside the package.
const (
	zarfConfigMediaType = "application/vnd.zarf.config.v1+json"
	zarfLayerMediaType  = "application/vnd.zarf.layer.v1.blob"
	// zarfSkeletonArch marks packages published for import into other
	// packages, not for deploying.
	zarfSkeletonArch = "skeleton"
	// maxManifest bounds an index or manifest read from a registry.
	maxManifest = 4 << 20
)

// IsOCI says whether a Zarf layer's package is a reference to a registry.
func IsOCI(pkg string) bool { return strings.HasPrefix(pkg, "oci://") }

// FetchZarf returns the Zarf package published at ref
// (oci://HOST/REPOSITORY:TAG or …@sha256:DIGEST) and the digest of the
// manifest it was read from. Every layer is verified against its digest
// while it is read, then the package's own checksums are verified as for an
// archive. A package read once is not fetched again: it is kept by manifest
// digest on disk under Options.ZarfDir, or in memory without one.
func (f *Fetcher) FetchZarf(ctx context.Context, ref string) (*zarf.Source, digest.Digest, error) {
	repo, err := f.zarfRepository(ref)
	if err != nil {
		return nil, "", err
	}
	manifestDesc, err := f.zarfManifest(ctx, repo, ref)
	if err != nil {
		// A registry that is down does not stop a package read before.
		if d, ok := f.lastZarfDigest(ref); ok {
			if src, ok := f.cachedZarf(ref, d); ok {
				return src, d, nil
			}
		}
		return nil, "", err
	}
	f.rememberZarfDigest(ref, manifestDesc.Digest)
	if src, ok := f.cachedZarf(ref, manifestDesc.Digest); ok {
		return src, manifestDesc.Digest, nil
	}
	files, err := fetchZarfFiles(ctx, repo, ref, manifestDesc)
	if err != nil {
		return nil, "", err
	}
	src, err := zarf.FromFiles(ref, files)
	if err != nil {
		return nil, "", err
	}
	f.keepZarf(manifestDesc.Digest, src, files)
	return src, manifestDesc.Digest, nil
}

func (f *Fetcher) zarfRepository(ref string) (*remote.Repository, error) {
	return f.repository("zarf package", ref)
}

// repository reaches the OCI repository of ref (oci://HOST/REPOSITORY:TAG)
// as the fetcher's options say: credentials and TLS of the pack registry
// on that host, else the Docker config file's. what names the object in
// errors.
func (f *Fetcher) repository(what, ref string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(strings.TrimPrefix(ref, "oci://"))
	if err != nil {
		return nil, fmt.Errorf("%s %s: want oci://HOST/REPOSITORY:TAG: %w", what, ref, err)
	}
	if repo.Reference.Reference == "" {
		return nil, fmt.Errorf("%s %s: want a tag or digest (oci://HOST/REPOSITORY:TAG)", what, ref)
	}
	access, known := HostAccess{}, false
	if f.opts.Access != nil {
		access, known = f.opts.Access(repo.Reference.Registry)
	}
	httpClient := access.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Transport: retry.NewTransport(http.DefaultTransport)}
	}
	client := &auth.Client{Client: httpClient, Cache: auth.NewCache()}
	client.SetUserAgent("strata")
	if known && (access.Username != "" || access.Password != "") {
		client.Credential = auth.StaticCredential(repo.Reference.Registry, auth.Credential{Username: access.Username, Password: access.Password})
	} else {
		store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s %s: Docker config: %w", what, ref, err)
		}
		client.Credential = credentials.Credential(store)
	}
	repo.Client, repo.PlainHTTP = client, f.opts.PlainHTTP || access.PlainHTTP
	return repo, nil
}

// zarfManifest resolves the reference to the package's manifest, choosing
// from an index the architecture of this machine, or the only deployable one.
func (f *Fetcher) zarfManifest(ctx context.Context, repo *remote.Repository, ref string) (ocispec.Descriptor, error) {
	desc, err := repo.Resolve(ctx, repo.Reference.Reference)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("zarf package %s: %w", ref, err)
	}
	if desc.MediaType != ocispec.MediaTypeImageIndex {
		return desc, nil
	}
	data, err := fetchBounded(ctx, repo, desc, maxManifest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("zarf package %s: index: %w", ref, err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("zarf package %s: index: %w", ref, err)
	}
	var deployable []ocispec.Descriptor
	var arches []string
	for _, m := range index.Manifests {
		arch := ""
		if m.Platform != nil {
			arch = m.Platform.Architecture
		}
		if arch == zarfSkeletonArch {
			continue
		}
		if arch == f.zarfArch() {
			return m, nil
		}
		deployable, arches = append(deployable, m), append(arches, arch)
	}
	if len(deployable) == 1 {
		return deployable[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("zarf package %s: no manifest for architecture %s in its index (it has %s)", ref, f.zarfArch(), strings.Join(arches, ", "))
}

func (f *Fetcher) zarfArch() string {
	if f.opts.Architecture != "" {
		return f.opts.Architecture
	}
	return runtime.GOARCH
}

// fetchZarfFiles reads every layer of a Zarf manifest, by title.
func fetchZarfFiles(ctx context.Context, repo *remote.Repository, ref string, desc ocispec.Descriptor) (map[string][]byte, error) {
	data, err := fetchBounded(ctx, repo, desc, maxManifest)
	if err != nil {
		return nil, fmt.Errorf("zarf package %s: manifest: %w", ref, err)
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(data, &manifest); err != nil {
		return nil, fmt.Errorf("zarf package %s: manifest: %w", ref, err)
	}
	if manifest.Config.MediaType != zarfConfigMediaType {
		return nil, fmt.Errorf("zarf package %s: manifest config has media type %q: want %s (a package published by zarf package publish)", ref, manifest.Config.MediaType, zarfConfigMediaType)
	}
	files := map[string][]byte{}
	var total int64
	for i, layer := range manifest.Layers {
		title := layer.Annotations[ocispec.AnnotationTitle]
		clean := path.Clean(title)
		if title == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("zarf package %s: layers[%d]: title %q: want a path inside the package", ref, i, title)
		}
		total += layer.Size
		if layer.Size < 0 || total > zarf.MaxPackageSize {
			return nil, fmt.Errorf("zarf package %s: larger than %d bytes", ref, zarf.MaxPackageSize)
		}
		data, err := fetchBounded(ctx, repo, layer, zarf.MaxPackageSize)
		if err != nil {
			return nil, fmt.Errorf("zarf package %s: %s: %w", ref, title, err)
		}
		files[clean] = data
	}
	return files, nil
}

// fetchBounded reads a blob or manifest, refusing one larger than limit
// and verifying its digest and size (content.ReadAll does both).
func fetchBounded(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than %d", desc.Digest, desc.Size, limit)
	}
	var rc io.ReadCloser
	var err error
	if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == ocispec.MediaTypeImageManifest {
		rc, err = repo.Manifests().Fetch(ctx, desc)
	} else {
		rc, err = repo.Blobs().Fetch(ctx, desc)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return content.ReadAll(rc, desc)
}

func (f *Fetcher) cachedZarf(ref string, d digest.Digest) (*zarf.Source, bool) {
	f.mu.Lock()
	src, ok := f.zarf[d]
	f.mu.Unlock()
	if ok {
		return src, true
	}
	if f.opts.ZarfDir == "" {
		return nil, false
	}
	src, err := zarf.Load(f.zarfFile(d))
	if err != nil {
		return nil, false // not kept yet, or damaged: fetch again
	}
	src.Path = ref
	return src, true
}

// keepZarf remembers a fetched package: on disk as a tar of its files when
// there is a ZarfDir (read again each time it is needed, so memory does not
// grow with packages), else in memory.
func (f *Fetcher) keepZarf(d digest.Digest, src *zarf.Source, files map[string][]byte) {
	if f.opts.ZarfDir == "" {
		f.mu.Lock()
		f.zarf[d] = src
		f.mu.Unlock()
		return
	}
	if err := os.MkdirAll(f.opts.ZarfDir, 0o755); err != nil {
		return // kept nowhere: fetched again next time
	}
	tmp, err := os.CreateTemp(f.opts.ZarfDir, ".partial-*")
	if err != nil {
		return
	}
	defer os.Remove(tmp.Name())
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if err := zarf.WriteTar(tmp, names, files); err != nil {
		tmp.Close()
		return
	}
	if tmp.Close() == nil {
		_ = os.Rename(tmp.Name(), f.zarfFile(d))
	}
}

func (f *Fetcher) zarfFile(d digest.Digest) string {
	return filepath.Join(f.opts.ZarfDir, d.Algorithm().String()+"-"+d.Encoded()+".tar")
}

// rememberZarfDigest records what a reference last resolved to, in memory
// and, with a ZarfDir, on disk (so it outlives a restart).
func (f *Fetcher) rememberZarfDigest(ref string, d digest.Digest) {
	f.mu.Lock()
	f.zarfRefs[ref] = d
	f.mu.Unlock()
	if f.opts.ZarfDir == "" {
		return
	}
	if err := os.MkdirAll(filepath.Join(f.opts.ZarfDir, "refs"), 0o755); err == nil {
		_ = os.WriteFile(f.zarfRefFile(ref), []byte(d.String()), 0o644)
	}
}

func (f *Fetcher) lastZarfDigest(ref string) (digest.Digest, bool) {
	f.mu.Lock()
	d, ok := f.zarfRefs[ref]
	f.mu.Unlock()
	if ok || f.opts.ZarfDir == "" {
		return d, ok
	}
	data, err := os.ReadFile(f.zarfRefFile(ref))
	if err != nil {
		return "", false
	}
	d, err = digest.Parse(string(data))
	return d, err == nil
}

func (f *Fetcher) zarfRefFile(ref string) string {
	return filepath.Join(f.opts.ZarfDir, "refs", digest.FromString(ref).Encoded())
}
