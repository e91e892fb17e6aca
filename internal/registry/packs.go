package registry

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/signature"
)

// Media types Strata writes; any single layer is read.
const (
	packLayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
	// annotationLayer records the pack's layer kind on the manifest, so a
	// listing need not pull the pack to say it.
	annotationLayer = "dev.strata.pack.layer"
)

// Pushed is a pack written to a registry.
type Pushed struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Layer   string `json:"layer"`
	// Digest is the digest of the pack's archive: its content.
	Digest string `json:"digest"`
	// Manifest is the digest of the manifest the tag points at.
	Manifest string `json:"manifest"`
	// Unchanged is true when the tag already held this content.
	Unchanged bool `json:"unchanged,omitempty"`
	// Signed is true when a signature was attached (push --sign-key).
	Signed bool `json:"signed,omitempty"`
}

// ErrTagMoved is returned when a tag already holds other content.
var ErrTagMoved = errors.New("the tag holds other content")

// Push writes the pack in dir as NAME:VERSION, its single layer the gzipped
// tar of the folder (top-level folder NAME-VERSION). A tag that already
// holds other content is moved only with force.
func (r *Registry) Push(ctx context.Context, p *pack.Pack, force bool) (Pushed, error) {
	data, err := archivePack(p.Path, p.ID())
	if err != nil {
		return Pushed{Name: p.Name, Version: p.Version}, fmt.Errorf("pack %s: %w", p.ID(), err)
	}
	return r.pushArchive(ctx, p.Name, p.Version, string(p.Layer), data, force)
}

// Sign signs the manifest NAME:VERSION points at with key, as cosign
// does (a Sigstore bundle referring to it), and returns that manifest.
func (r *Registry) Sign(ctx context.Context, name, version string, key crypto.Signer) (ocispec.Descriptor, error) {
	res, err := r.resolve(ctx, name, version)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	repo, err := r.repository(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := signature.SignCosign(ctx, repo, res.manifest, key); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s:%s: %w", r.Endpoint.PackRepository(name), version, r.explain(err))
	}
	return res.manifest, nil
}

// Verify checks the signature of NAME:VERSION with v, whatever the
// registry's own verifier, and returns the manifest it checked.
func (r *Registry) Verify(ctx context.Context, name, version string, v signature.Verifier) (ocispec.Descriptor, error) {
	res, err := r.resolve(ctx, name, version)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return res.manifest, r.check(ctx, v, name, version, res.manifest)
}

// pushArchive writes an archive as NAME:VERSION.
func (r *Registry) pushArchive(ctx context.Context, name, version, kind string, data []byte, force bool) (Pushed, error) {
	out := Pushed{Name: name, Version: version, Layer: kind}
	layer := content.NewDescriptorFromBytes(packLayerMediaType, data)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: name + "-" + version + ".tar.gz"}
	out.Digest = layer.Digest.String()
	repo, err := r.repository(name)
	if err != nil {
		return out, err
	}
	if current, err := r.resolve(ctx, name, version); err == nil {
		if current.layer.Digest == layer.Digest {
			out.Manifest, out.Unchanged = current.manifest.Digest.String(), true
			return out, nil
		}
		if !force {
			return out, fmt.Errorf("%s:%s: %w (%s, this pack is %s): pass --force to move it", r.Endpoint.PackRepository(name), version, ErrTagMoved, current.layer.Digest, layer.Digest)
		}
	} else if !errors.Is(err, errdef.ErrNotFound) {
		return out, err
	}
	if err := pushBlob(ctx, repo, layer, data); err != nil {
		return out, r.explain(err)
	}
	manifest, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{annotationLayer: kind, ocispec.AnnotationCreated: "1970-01-01T00:00:00Z"},
	})
	if err != nil {
		return out, r.explain(err)
	}
	if err := repo.Tag(ctx, manifest, version); err != nil {
		return out, r.explain(err)
	}
	out.Manifest = manifest.Digest.String()
	return out, nil
}

func pushBlob(ctx context.Context, target content.Storage, desc ocispec.Descriptor, data []byte) error {
	if ok, err := target.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	err := target.Push(ctx, desc, bytes.NewReader(data))
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}

// listedAs is what the last complete listing found NAME:VERSION to be.
func (r *Registry) listedAs(name, version string) (resolved, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.listed[name+":"+version]
	return res, ok
}

// resolved is a tag with its manifest and the pack layer in it.
type resolved struct {
	manifest ocispec.Descriptor
	layer    ocispec.Descriptor
	kind     string
}

// resolve reads NAME:VERSION's manifest and picks its pack layer: the only
// layer, or the one whose title is an archive.
func (r *Registry) resolve(ctx context.Context, name, version string) (resolved, error) {
	repo, err := r.repository(name)
	if err != nil {
		return resolved{}, err
	}
	desc, rc, err := repo.FetchReference(ctx, version)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return resolved{}, fmt.Errorf("%s:%s: %w", r.Endpoint.PackRepository(name), version, errdef.ErrNotFound)
		}
		return resolved{}, r.explain(err)
	}
	data, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		return resolved{}, fmt.Errorf("%s:%s: manifest: %w", r.Endpoint.PackRepository(name), version, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil || len(m.Layers) == 0 {
		return resolved{}, fmt.Errorf("%s:%s: not a pack: want an OCI manifest with the pack archive as its layer", r.Endpoint.PackRepository(name), version)
	}
	layer := m.Layers[0]
	if len(m.Layers) > 1 {
		var archives []ocispec.Descriptor
		for _, l := range m.Layers {
			if t := l.Annotations[ocispec.AnnotationTitle]; strings.HasSuffix(t, ".tar.gz") || strings.HasSuffix(t, ".tgz") {
				archives = append(archives, l)
			}
		}
		if len(archives) != 1 {
			return resolved{}, fmt.Errorf("%s:%s: %d layers: want the pack archive as the single layer", r.Endpoint.PackRepository(name), version, len(m.Layers))
		}
		layer = archives[0]
	}
	return resolved{manifest: desc, layer: layer, kind: m.Annotations[annotationLayer]}, nil
}

// Pulled is a pack read from a registry.
type Pulled struct {
	Name    string
	Version string
	// Digest is the archive's digest; Dir the pack folder in the cache.
	Digest string
	Dir    string
	// Stale is true when the registry could not be asked and the cache's
	// last answer for the tag was used; Err says why.
	Stale bool
	Err   error
}

// Pull returns NAME:VERSION from the cache, fetching it when the tag points
// at content the cache lacks. When the registry cannot be reached, the
// content the tag last pointed at is used if it is cached.
func (r *Registry) Pull(ctx context.Context, cache *Cache, name, version string) (Pulled, error) {
	out := Pulled{Name: name, Version: version}
	repoName := r.Endpoint.PackRepository(name)
	// What the last listing (a PackRegistry's sync) found is trusted until
	// the next: a cached pack is then used without a request, so resolving
	// a stack costs no round trip per pack. A tag pushed again is seen at
	// the next sync.
	if res, ok := r.listedAs(name, version); ok {
		if dir, ok := cache.Lookup(res.layer.Digest); ok {
			if err := r.verify(ctx, cache, name, version, res.manifest); err != nil {
				return out, err
			}
			out.Digest, out.Dir = res.layer.Digest.String(), dir
			return out, nil
		}
	}
	res, err := r.resolve(ctx, name, version)
	if err != nil {
		// A registry that is down, or a version deleted from it, does not stop
		// what was pulled before: the content the tag last had is used, and
		// the caller is told why (Stale, Err).
		var re *ReachError
		if errors.As(err, &re) || errors.Is(err, errdef.ErrNotFound) {
			if last, ok := cache.loadRef(repoName, version); ok && r.verifiedBefore(cache, digest.Digest(last.Manifest)) {
				if dir, ok := cache.Lookup(digest.Digest(last.Layer)); ok {
					out.Digest, out.Dir, out.Stale, out.Err = last.Layer, dir, true, err
					return out, nil
				}
			}
		}
		return out, err
	}
	if err := r.verify(ctx, cache, name, version, res.manifest); err != nil {
		return out, err
	}
	repo, err := r.repository(name)
	if err != nil {
		return out, err
	}
	dir, err := cache.Fill(res.layer.Digest, res.layer.Size, func() (io.ReadCloser, error) {
		rc, err := repo.Fetch(ctx, res.layer)
		return rc, r.explain(err)
	})
	if err != nil {
		return out, fmt.Errorf("%s:%s: %w", repoName, version, err)
	}
	cache.saveRef(repoName, version, ref{Manifest: res.manifest.Digest.String(), Layer: res.layer.Digest.String(), Size: res.layer.Size})
	out.Digest, out.Dir = res.layer.Digest.String(), dir
	return out, nil
}

// RefusedError is a pack version whose signature the registry's verifier
// did not accept.
type RefusedError struct {
	Name, Version string
	// Repository is where the pack is, HOST/PATH.
	Repository string
	*signature.Refusal
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s:%s (%s): %s", e.Repository, e.Version, e.Digest, e.Refusal)
}

func (e *RefusedError) Unwrap() error { return e.Refusal }

// verify checks a pack manifest's signature when the registry verifies,
// once per digest and key: the cache remembers what it verified.
func (r *Registry) verify(ctx context.Context, cache *Cache, name, version string, manifest ocispec.Descriptor) error {
	if r.verifiedBefore(cache, manifest.Digest) {
		return nil
	}
	if err := r.check(ctx, r.verifier, name, version, manifest); err != nil {
		return err
	}
	cache.markVerified(r.verifier.ID(), manifest.Digest)
	return nil
}

// check verifies a pack manifest's signature with v: a *RefusedError
// when v refuses it.
func (r *Registry) check(ctx context.Context, v signature.Verifier, name, version string, manifest ocispec.Descriptor) error {
	repo, err := r.repository(name)
	if err != nil {
		return err
	}
	err = v.Verify(ctx, repo, r.Endpoint.PackRepository(name), manifest)
	var refusal *signature.Refusal
	if errors.As(err, &refusal) {
		return &RefusedError{Name: name, Version: version, Repository: r.Endpoint.PackRepository(name), Refusal: refusal}
	}
	if err != nil {
		return fmt.Errorf("%s:%s (%s): check its signature: %w", r.Endpoint.PackRepository(name), version, manifest.Digest, r.explain(err))
	}
	return nil
}

// verifiedBefore tells whether a manifest needs no check: the registry
// does not verify, or its verifier accepted the digest before.
func (r *Registry) verifiedBefore(cache *Cache, manifest digest.Digest) bool {
	return r.verifier == nil || cache.verified(r.verifier.ID(), manifest)
}

// Refused checks the signature of every pack version the last listing
// found and returns those refused, sorted by name and version; nil when
// the registry does not verify. Digests verified before cost nothing.
func (r *Registry) Refused(ctx context.Context, cache *Cache) ([]*RefusedError, error) {
	if r.verifier == nil {
		return nil, nil
	}
	r.mu.Lock()
	keys := slices.Sorted(maps.Keys(r.listed))
	listed := maps.Clone(r.listed)
	r.mu.Unlock()
	var out []*RefusedError
	for _, key := range keys {
		name, version, _ := strings.Cut(key, ":")
		err := r.verify(ctx, cache, name, version, listed[key].manifest)
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			out = append(out, refused)
		case err != nil:
			return out, err
		}
	}
	return out, nil
}

// Entry is one pack version a registry holds.
type Entry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Layer   string `json:"layer"`
	Digest  string `json:"digest"`
}

// List returns every pack version below the registry's base path. A pack
// whose manifest does not say its layer kind is pulled (through the
// cache) to read it.
func (r *Registry) List(ctx context.Context, cache *Cache) (_ []Entry, err error) {
	names, err := r.packNames(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	listed := map[string]resolved{}
	defer func() {
		if err == nil {
			r.mu.Lock()
			r.listed = listed
			r.mu.Unlock()
		}
	}()
	for _, name := range names {
		tags, err := r.versions(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, tag := range tags {
			res, err := r.resolve(ctx, name, tag)
			if err != nil {
				return nil, err
			}
			listed[name+":"+tag] = res
			e := Entry{Name: name, Version: tag, Layer: res.kind, Digest: res.layer.Digest.String()}
			if e.Layer == "" && cache != nil {
				if pulled, err := r.Pull(ctx, cache, name, tag); err == nil {
					if p, _ := pack.Load(pulled.Dir); p != nil {
						e.Layer = string(p.Layer)
					}
				}
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// versions lists the tags of a pack's repository that name versions: not
// the tags where signatures and other attachments of a manifest are kept
// (sha256-<hex> for OCI referrers without the API, cosign's
// sha256-<hex>.sig, .att and .sbom).
func (r *Registry) versions(ctx context.Context, name string) ([]string, error) {
	repo, err := r.repository(name)
	if err != nil {
		return nil, err
	}
	var tags []string
	if err := repo.Tags(ctx, "", func(t []string) error { tags = append(tags, t...); return nil }); err != nil {
		return nil, r.explain(err)
	}
	return slices.DeleteFunc(tags, attachmentTag.MatchString), nil
}

var attachmentTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.[a-z]+)?$`)

// packNames lists the pack repositories below the base path (the
// registry's catalog API).
func (r *Registry) packNames(ctx context.Context) ([]string, error) {
	reg, err := r.registry()
	if err != nil {
		return nil, err
	}
	prefix := r.Endpoint.archive() + "/"
	var names []string
	err = reg.Repositories(ctx, "", func(repos []string) error {
		for _, repo := range repos {
			if name, ok := strings.CutPrefix(repo, prefix); ok && !strings.Contains(name, "/") {
				names = append(names, name)
			}
		}
		return nil
	})
	return names, r.explain(err)
}

// Mirror copies every pack version of src into dst as it is — manifest and
// archive byte for byte, so digests stay the same — with the signatures
// that refer to it (cosign, notation) and older cosign's .sig tag, so a
// mirror verifies as its source does. A version dst already holds with the
// same content gets only the signatures it lacks; a dst tag that holds
// other content is not moved unless force.
func Mirror(ctx context.Context, src, dst *Registry, force bool) ([]Pushed, error) {
	names, err := src.packNames(ctx)
	if err != nil {
		return nil, err
	}
	var out []Pushed
	for _, name := range names {
		from, err := src.repository(name)
		if err != nil {
			return out, err
		}
		to, err := dst.repository(name)
		if err != nil {
			return out, err
		}
		tags, err := src.versions(ctx, name)
		if err != nil {
			return out, err
		}
		for _, tag := range tags {
			res, err := src.resolve(ctx, name, tag)
			if err != nil {
				return out, err
			}
			p := Pushed{Name: name, Version: tag, Layer: res.kind, Digest: res.layer.Digest.String(), Manifest: res.manifest.Digest.String()}
			if have, err := dst.resolve(ctx, name, tag); err == nil {
				if have.layer.Digest != res.layer.Digest && !force {
					return out, fmt.Errorf("%s:%s: %w (%s, the source has %s): pass --force to move it", dst.Endpoint.PackRepository(name), tag, ErrTagMoved, have.layer.Digest, res.layer.Digest)
				}
				p.Unchanged = have.manifest.Digest == res.manifest.Digest
			} else if !errors.Is(err, errdef.ErrNotFound) {
				return out, err
			}
			// The manifest and every artifact referring to it: signatures.
			if _, err := oras.ExtendedCopy(ctx, from, tag, to, tag, oras.DefaultExtendedCopyOptions); err != nil {
				return out, fmt.Errorf("copy %s:%s to %s: %w", name, tag, dst.Endpoint, err)
			}
			legacy := "sha256-" + res.manifest.Digest.Encoded() + ".sig"
			if _, err := oras.Copy(ctx, from, legacy, to, legacy, oras.DefaultCopyOptions); err != nil && !errors.Is(err, errdef.ErrNotFound) {
				return out, fmt.Errorf("copy the signature %s of %s:%s to %s: %w", legacy, name, tag, dst.Endpoint, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}
