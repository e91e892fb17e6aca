package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// ZarfArchiveFiles reads the files of a built Zarf package archive
// (.tar.zst or .tar) by path.
func ZarfArchiveFiles(t testing.TB, archive string) map[string][]byte {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(archive, ".zst") {
		dec, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		r = dec
	}
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[path.Clean(strings.TrimPrefix(h.Name, "./"))] = data
	}
}

// PublishZarf writes a Zarf package's files to repo:tag in the layout
// `zarf package publish` writes: each file a layer of Zarf's blob media type
// titled with its path, a manifest whose config has Zarf's config media
// type, and the tag on an image index naming that manifest for platform
// multi/arch. It returns the manifest's digest.
func (r *Registry) PublishZarf(t testing.TB, repo, tag, arch, username, password string, files map[string][]byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	rep, err := remote.NewRepository(r.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	rep.Client, rep.PlainHTTP = r.client(username, password), r.CAPEM == nil
	push := func(mediaType string, data []byte, annotations map[string]string) ocispec.Descriptor {
		desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data)), Annotations: annotations}
		var err error
		if mediaType == ocispec.MediaTypeImageManifest || mediaType == ocispec.MediaTypeImageIndex {
			err = rep.Manifests().Push(ctx, desc, bytes.NewReader(data))
		} else {
			err = rep.Blobs().Push(ctx, desc, bytes.NewReader(data))
		}
		if err != nil {
			t.Fatalf("publish zarf package to %s: %v", rep.Reference, err)
		}
		return desc
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var layers []ocispec.Descriptor
	for _, n := range names {
		layers = append(layers, push("application/vnd.zarf.layer.v1.blob", files[n], map[string]string{ocispec.AnnotationTitle: n}))
	}
	config, _ := json.Marshal(map[string]any{"architecture": arch, "os": "multi"})
	manifest, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: push("application/vnd.zarf.config.v1+json", config, nil), Layers: layers,
	})
	manifestDesc := push(ocispec.MediaTypeImageManifest, manifest, nil)
	index, _ := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageManifest, Digest: manifestDesc.Digest, Size: manifestDesc.Size,
			Platform: &ocispec.Platform{OS: "multi", Architecture: arch},
		}},
	})
	indexDesc := push(ocispec.MediaTypeImageIndex, index, nil)
	if err := rep.Tag(ctx, indexDesc, tag); err != nil {
		t.Fatal(err)
	}
	return manifestDesc.Digest
}

// client reaches the test registry with its CA and the given credentials.
func (r *Registry) client(username, password string) *auth.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.CAPEM)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c := &auth.Client{Client: &http.Client{Transport: transport}}
	if username != "" {
		c.Credential = auth.StaticCredential(r.Host, auth.Credential{Username: username, Password: password})
	}
	return c
}
