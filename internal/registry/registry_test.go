package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

const packCentral = "../../../shared/testdata/pack-central"

const (
	user     = "platform"
	password = "s3cret-registry-pw"
)

// secureRegistry is a registry as teams run it: TLS from a private CA and
// basic authentication.
func secureRegistry(t *testing.T) (*testenv.Registry, *Registry) {
	t.Helper()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Username: user, Password: password})
	ep, err := ParseEndpoint(srv.Endpoint("platform/packs"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := New(ep, Options{Credentials: &Credentials{Username: user, Password: password}, CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	return srv, reg
}

func cache(t *testing.T) *Cache {
	t.Helper()
	c, err := OpenCache(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadPack(t *testing.T, dir string) *pack.Pack {
	t.Helper()
	p, problems := pack.Load(dir)
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every real pack goes in with Push, one more goes in with the oras CLI
// exactly as Palette's documentation writes it, and a stack resolves from
// the registry alone.
func TestRealPacksFromARegistryAlone(t *testing.T) {
	t.Parallel()
	srv, reg := secureRegistry(t)
	ctx := context.Background()
	paths, err := pack.Discover(packCentral)
	if err != nil {
		t.Fatal(err)
	}
	pushed := map[string]string{}
	for _, path := range append(paths, "../../packs/ubuntu-24.04", "../../packs/kubernetes-1.37.2") {
		p := loadPack(t, path)
		if p.Name == "hello-universe" && p.Version == "1.2.0" {
			continue // pushed with oras below
		}
		out, err := reg.Push(ctx, p, false)
		if err != nil {
			t.Fatalf("push %s: %v", p.ID(), err)
		}
		pushed[p.Name+":"+p.Version] = out.Digest
		again, err := reg.Push(ctx, p, false)
		if err != nil || !again.Unchanged || again.Digest != out.Digest {
			t.Errorf("pushing %s again: %+v %v, want unchanged with the same digest", p.ID(), again, err)
		}
	}

	// Palette's documented way: tar the folder, oras push it.
	work := t.TempDir()
	src := filepath.Join(work, "hello-universe-1.2.0")
	if out, err := exec.Command("cp", "-r", filepath.Join(packCentral, "hello-universe-1.2.0"), src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	tarCmd := exec.Command("tar", "-czf", "hello-universe-1.2.0.tar.gz", "hello-universe-1.2.0")
	tarCmd.Dir = work
	if out, err := tarCmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	ca := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	oras := exec.Command(testenv.Tool(t, "oras"), "push", "--ca-file", ca, "-u", user, "-p", password,
		srv.Host+"/platform/packs/spectro-packs/archive/hello-universe:1.2.0", "hello-universe-1.2.0.tar.gz")
	oras.Dir, oras.Env = work, append(os.Environ(), "HOME="+work)
	if out, err := oras.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}

	c := cache(t)
	entries, err := reg.List(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(pushed)+1 {
		t.Errorf("list: %d packs, want %d: %+v", len(entries), len(pushed)+1, entries)
	}
	for _, e := range entries {
		if want, ok := pushed[e.Name+":"+e.Version]; ok && e.Digest != want {
			t.Errorf("%s:%s digest %s, want the pushed %s", e.Name, e.Version, e.Digest, want)
		}
		if e.Layer == "" || !strings.HasPrefix(e.Digest, "sha256:") {
			t.Errorf("entry %+v: want its layer and digest", e)
		}
	}

	catalog := &Catalog{Registries: []*Registry{reg}, Cache: c}
	docs, err := profile.ReadFiles("../../examples/infra-local.yaml", "../../examples/addon-hello.yaml", "../../examples/addon-registry.yaml", "../../examples/cluster-dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.ResolveStack(docs.Profiles, docs.Clusters[0], catalog, stack.Facts{})
	if err != nil {
		t.Fatalf("resolve from the registry alone: %v", err)
	}
	for _, l := range st.Layers {
		if l.Pack != nil && (l.Pack.Digest == "" || !strings.HasPrefix(l.Pack.Path, c.Dir())) {
			t.Errorf("layer %s: pack %s read from %s (digest %q), want the registry's cache", l.Name, l.Pack.ID(), l.Pack.Path, l.Pack.Digest)
		}
	}
	if l, ok := st.Layer("hello-universe"); !ok || l.Pack == nil || l.Pack.Version != "1.2.0" {
		t.Errorf("the oras-pushed hello-universe 1.2.0 is not in the stack: %+v", l)
	}
}

func TestRegistryRefusalsSayWhy(t *testing.T) {
	t.Parallel()
	srv, reg := secureRegistry(t)
	ctx := context.Background()
	ep := reg.Endpoint

	wrong, _ := New(ep, Options{Credentials: &Credentials{Username: user, Password: "wrong"}, CAPEM: srv.CAPEM})
	err := wrong.Check(ctx)
	if Reason(err) != "AuthenticationFailed" || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v (reason %s), want AuthenticationFailed without the password", err, Reason(err))
	}
	untrusted, _ := New(ep, Options{Credentials: &Credentials{Username: user, Password: password}})
	if err := untrusted.Check(ctx); Reason(err) != "TLSError" {
		t.Errorf("unknown CA: %v (reason %s), want TLSError", err, Reason(err))
	}
	down, _ := New(Endpoint{Host: "127.0.0.1:1", Base: "x"}, Options{Credentials: &Credentials{}})
	if err := down.Check(ctx); Reason(err) != "Unreachable" {
		t.Errorf("nothing listening: %v (reason %s), want Unreachable", err, Reason(err))
	}

	// A tag moves to other content only when asked.
	p := loadPack(t, filepath.Join(packCentral, "spegel-0.0.30"))
	first, err := reg.Push(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	changed := t.TempDir()
	if out, err := exec.Command("cp", "-r", p.Path+"/.", changed).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(changed, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p2 := loadPack(t, changed)
	if _, err := reg.Push(ctx, p2, false); !errors.Is(err, ErrTagMoved) {
		t.Errorf("pushing other content to the same tag: %v, want it refused", err)
	}
	second, err := reg.Push(ctx, p2, true)
	if err != nil || second.Digest == first.Digest {
		t.Fatalf("--force: %+v %v, want a new digest", second, err)
	}
	c := cache(t)
	pulled, err := reg.Pull(ctx, c, "spegel", "0.0.30")
	if err != nil || pulled.Digest != second.Digest {
		t.Errorf("pull after the move: %+v %v, want %s", pulled, err, second.Digest)
	}
}

// Archives that are not one pack folder are refused before anything is
// written outside the cache's scratch folder, and nothing is kept.
func TestHostileArchivesAreRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	ctx := context.Background()
	outside := filepath.Join(t.TempDir(), "escaped")
	cases := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"no-pack-json", []tarEntry{{name: "x-1.0.0/values.yaml", body: "a: 1\n"}}, "no pack.json"},
		{"two-folders", []tarEntry{{name: "a/pack.json", body: "{}"}, {name: "b/pack.json", body: "{}"}}, "two top-level entries"},
		{"traversal", []tarEntry{{name: "x/pack.json", body: "{}"}, {name: "x/../../" + filepath.Base(outside), body: "pwned"}}, "leaves the pack folder"},
		{"absolute", []tarEntry{{name: outside, body: "pwned"}}, "leaves the pack folder"},
		{"symlink", []tarEntry{{name: "x/pack.json", body: "{}"}, {name: "x/link", link: "/etc/passwd"}}, "symbolic link"},
		{"bomb", []tarEntry{{name: "x/pack.json", body: "{}"}, {name: "x/zeros", zeros: 2 << 30}}, "more than 512 MiB once unpacked"},
	}
	c := cache(t)
	for _, tc := range cases {
		data := makeTar(t, tc.entries)
		out, err := reg.pushArchive(ctx, tc.name, "1.0.0", "addon", data, false)
		if err != nil {
			t.Fatalf("%s: push: %v", tc.name, err)
		}
		_, err = reg.Pull(ctx, c, tc.name, "1.0.0")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: pull: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if _, ok := c.Lookup(digest.Digest(out.Digest)); ok {
			t.Errorf("%s: the refused archive is in the cache", tc.name)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("an archive wrote %s", outside)
	}
	if left, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp")); len(left) != 0 {
		t.Errorf("scratch left in the cache: %v", left)
	}
}

// A blob whose bytes do not match its digest is refused and not kept.
func TestBlobNotMatchingItsDigestIsRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	ctx := context.Background()
	out, err := reg.Push(ctx, loadPack(t, filepath.Join(packCentral, "hello-universe-1.1.1")), false)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the blob where the registry keeps it.
	d := digest.Digest(out.Digest)
	corruptBlob(t, srv, d)
	c := cache(t)
	_, err = reg.Pull(ctx, c, "hello-universe", "1.1.1")
	if err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("pull: %v, want a digest mismatch", err)
	}
	if _, ok := c.Lookup(d); ok {
		t.Error("the corrupt blob is in the cache")
	}
}

// A registry that goes down does not stop packs already cached; a pack not
// cached says which registry and why.
func TestCachedPacksOutliveTheRegistry(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	ctx := context.Background()
	for _, dir := range []string{"spegel-0.0.18", "spegel-0.0.30"} {
		if _, err := reg.Push(ctx, loadPack(t, filepath.Join(packCentral, dir)), false); err != nil {
			t.Fatal(err)
		}
	}
	c := cache(t)
	first, err := reg.Pull(ctx, c, "spegel", "0.0.30")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	again, err := reg.Pull(ctx, c, "spegel", "0.0.30")
	if err != nil || !again.Stale || again.Digest != first.Digest || Reason(again.Err) != "Unreachable" {
		t.Errorf("cached pack with the registry down: %+v %v, want the cached content, marked stale", again, err)
	}
	_, err = reg.Pull(ctx, c, "spegel", "0.0.18")
	if Reason(err) != "Unreachable" || !strings.Contains(err.Error(), srv.Host) {
		t.Errorf("uncached pack with the registry down: %v, want Unreachable naming the registry", err)
	}
	// A new cache on the same folder (a restart) still has it.
	reopened, err := OpenCache(c.Dir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := reg.Pull(ctx, reopened, "spegel", "0.0.30"); err != nil || p.Digest != first.Digest {
		t.Errorf("after a restart: %+v %v", p, err)
	}
}

func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	ctx := context.Background()
	dirs := []string{"hello-universe-1.1.1", "hello-universe-1.2.0", "permission-manager-1.0.0"}
	for _, dir := range dirs {
		if _, err := reg.Push(ctx, loadPack(t, filepath.Join(packCentral, dir)), false); err != nil {
			t.Fatal(err)
		}
	}
	// Room for about two of these small packs.
	c, err := OpenCache(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var digests []digest.Digest
	for _, v := range []string{"1.1.1", "1.2.0"} {
		p, err := reg.Pull(ctx, c, "hello-universe", v)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digest.Digest(p.Digest))
	}
	// Bound of 1 byte: each new pack evicts every other one.
	if _, ok := c.Lookup(digests[0]); ok {
		t.Error("the least recently used pack was kept past the bound")
	}
	if _, ok := c.Lookup(digests[1]); !ok {
		t.Error("the pack just pulled was evicted")
	}
}

type tarEntry struct {
	name, body, link string
	zeros            int64
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		}
		if e.zeros > 0 {
			hdr.Size = e.zeros
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.zeros > 0 {
			if _, err := tw.Write(make([]byte, 0)); err != nil {
				t.Fatal(err)
			}
			zero := make([]byte, 1<<20)
			for written := int64(0); written < e.zeros; written += int64(len(zero)) {
				if _, err := tw.Write(zero); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The same name and version with other content in two registries is an
// error naming both, unless the layer names the registry to take it from.
func TestSamePackInTwoRegistries(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	a, b := plainRegistry(t, srv, "team-a"), plainRegistry(t, srv, "team-b")
	orig := loadPack(t, filepath.Join(packCentral, "spegel-0.0.30"))
	if _, err := a.Push(ctx, orig, false); err != nil {
		t.Fatal(err)
	}
	changed := t.TempDir()
	if err := os.CopyFS(changed, os.DirFS(orig.Path)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(changed, "NOTES.md"), []byte("team b's build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := b.Push(ctx, loadPack(t, changed), false)
	if err != nil {
		t.Fatal(err)
	}
	catalog := &Catalog{Registries: []*Registry{a, b}, Cache: cache(t)}
	_, err = catalog.Pack("spegel", "0.0.30")
	if err == nil || !strings.Contains(err.Error(), "differs between registries") || !strings.Contains(err.Error(), a.Endpoint.String()) || !strings.Contains(err.Error(), b.Endpoint.String()) {
		t.Errorf("two contents for one version: %v, want an error naming both registries", err)
	}
	p, err := catalog.PackFrom(b.Endpoint.String(), "spegel", "0.0.30")
	if err != nil {
		t.Errorf("pack.registry naming team-b: %v", err)
	} else if p.Digest != other.Digest {
		t.Errorf("pack.registry naming team-b: digest %q, want %s", p.Digest, other.Digest)
	}
	if _, err := catalog.PackFrom("oci://elsewhere/x", "spegel", "0.0.30"); err == nil || !strings.Contains(err.Error(), `no registry "oci://elsewhere/x" here`) {
		t.Errorf("an unknown registry name: %v", err)
	}
}

// Mirroring copies every pack with its digest and its signatures, and
// again copies nothing.
func TestMirrorKeepsDigests(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	src, dst := plainRegistry(t, srv, "connected"), plainRegistry(t, srv, "airgapped")
	for _, dir := range []string{"spegel-0.0.18", "spegel-0.0.30", "tekton-chains-0.12.0"} {
		if _, err := src.Push(ctx, loadPack(t, filepath.Join(packCentral, dir)), false); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Sign(ctx, "spegel", "0.0.30", key); err != nil {
		t.Fatal(err)
	}
	pub, _ := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	trust, err := signature.NewCosign(pub)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := Mirror(ctx, src, dst, false)
	if err != nil || len(copied) != 3 {
		t.Fatalf("mirror: %d copied, %v", len(copied), err)
	}
	want, _ := src.List(ctx, nil)
	got, err := dst.List(ctx, nil)
	if err != nil || len(got) != len(want) {
		t.Fatalf("mirror: list %v %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mirrored %+v, source %+v: want the same digest", got[i], want[i])
		}
	}
	if _, err := dst.Verify(ctx, "spegel", "0.0.30", trust); err != nil {
		t.Errorf("the mirror of a signed pack does not verify: %v", err)
	}
	if _, err := dst.Verify(ctx, "spegel", "0.0.18", trust); !signature.IsRefusal(err) {
		t.Errorf("the mirror of an unsigned pack: %v, want a refusal", err)
	}
	// Signed after the first mirror: the next one brings the signature.
	if _, err := src.Sign(ctx, "spegel", "0.0.18", key); err != nil {
		t.Fatal(err)
	}
	again, err := Mirror(ctx, src, dst, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if !p.Unchanged {
			t.Errorf("a second mirror copied %s:%s again", p.Name, p.Version)
		}
	}
	if _, err := dst.Verify(ctx, "spegel", "0.0.18", trust); err != nil {
		t.Errorf("a signature made after the first mirror was not brought: %v", err)
	}
}

// A version deleted from the registry keeps serving what was pulled, with a
// warning naming it; a cache reopened after a restart fetches nothing again
// (the registry's copy of the blob is corrupted, and the pull still works).
func TestDeletedVersionAndRestartUseTheCache(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	ctx := context.Background()
	pushed, err := reg.Push(ctx, loadPack(t, filepath.Join(packCentral, "kubevious-1.0.10")), false)
	if err != nil {
		t.Fatal(err)
	}
	c := cache(t)
	catalog := &Catalog{Registries: []*Registry{reg}, Cache: c}
	if _, err := catalog.Pack("kubevious", "1.0.10"); err != nil {
		t.Fatal(err)
	}

	// Restart: a new cache on the folder; the registry's blob is corrupt, so
	// a fetch would fail its digest check.
	corruptBlob(t, srv, digest.Digest(pushed.Digest))
	reopened, err := OpenCache(c.Dir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&Catalog{Registries: []*Registry{reg}, Cache: reopened}).Pack("kubevious", "1.0.10")
	if err != nil || p.Digest != pushed.Digest || len(p.Warnings) != 0 {
		t.Fatalf("after a restart: %v %+v, want the cached pack without fetching it", err, p)
	}

	// The version is deleted from the registry.
	repo, err := reg.repository("kubevious")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, "1.0.10")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Delete(ctx, desc); err != nil {
		t.Fatal(err)
	}
	p, err = (&Catalog{Registries: []*Registry{reg}, Cache: reopened}).Pack("kubevious", "1.0.10")
	if err != nil || p.Digest != pushed.Digest {
		t.Fatalf("a deleted version that is cached: %v, want it served from the cache", err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].String(), "spectro-packs/archive/kubevious:1.0.10: used from the cache (the version is no longer in the registry)") {
		t.Errorf("warnings %v, want one naming the missing version", p.Warnings)
	}
	// Not cached anywhere: an error naming registry and pack.
	if _, err := (&Catalog{Registries: []*Registry{reg}, Cache: cache(t)}).Pack("kubevious", "1.0.10"); err == nil || !strings.Contains(err.Error(), "pack kubevious 1.0.10 not found in the registries "+reg.Endpoint.String()) {
		t.Errorf("uncached deleted version: %v", err)
	}
	// With no pack folder (an agent started without --packs), the error
	// still names the registries tried, not only the folders.
	noFolders, err := pack.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Catalog{Registries: []*Registry{reg}, Folders: noFolders, Cache: cache(t)}).Pack("kubevious", "1.0.10")
	if err == nil || !strings.Contains(err.Error(), "not found in the registries "+reg.Endpoint.String()) || strings.Contains(err.Error(), "pack folder") {
		t.Errorf("not found in registries, no folders: %v", err)
	}
}

// plainRegistry is a client for the base path of a test registry without
// TLS or authentication.
func plainRegistry(t testing.TB, srv *testenv.Registry, base string) *Registry {
	t.Helper()
	ep, err := ParseEndpoint(srv.Endpoint(base))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(ep, Options{PlainHTTP: true, Credentials: &Credentials{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// corruptBlob flips a byte of a blob where the registry keeps it, so a
// fetch of it no longer matches its digest.
func corruptBlob(t *testing.T, srv *testenv.Registry, d digest.Digest) {
	t.Helper()
	blob := filepath.Join(srv.DataDir(), "docker/registry/v2/blobs/sha256", d.Encoded()[:2], d.Encoded(), "data")
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// countingTransport counts the requests a registry client sends.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(req)
}

// After a listing (a PackRegistry's sync), a cached pack is served without
// a request; a tag pushed again is seen at the next listing, not before.
func TestASyncedListingAnswersWithoutRequests(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	ctx := context.Background()
	hello := loadPack(t, filepath.Join(packCentral, "hello-universe-1.2.0"))
	first, err := reg.Push(ctx, hello, false)
	if err != nil {
		t.Fatal(err)
	}
	c := cache(t)
	if _, err := reg.List(ctx, c); err != nil {
		t.Fatal(err)
	}
	counter := &countingTransport{next: reg.client.Client.Transport}
	reg.client.Client.Transport = counter
	catalog := &Catalog{Registries: []*Registry{reg}, Cache: c}
	if _, err := catalog.Pack("hello-universe", "1.2.0"); err != nil {
		t.Fatal(err)
	}
	fetched := counter.n.Load()
	p, err := catalog.Pack("hello-universe", "1.2.0")
	if err != nil || p.Digest != first.Digest {
		t.Fatalf("%v %v", err, p)
	}
	if n := counter.n.Load() - fetched; n != 0 {
		t.Errorf("a listed, cached pack cost %d requests, want 0", n)
	}

	// Pushed again with other content: the listing is trusted until the next.
	changed := t.TempDir()
	if err := os.CopyFS(changed, os.DirFS(hello.Path)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(changed, "NOTES.md"), []byte("rebuilt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := reg.Push(ctx, loadPack(t, changed), true)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := catalog.Pack("hello-universe", "1.2.0"); p == nil || p.Digest != first.Digest {
		t.Errorf("before the next listing: %v, want the listed digest %s", p, first.Digest)
	}
	if _, err := reg.List(ctx, c); err != nil {
		t.Fatal(err)
	}
	if p, _ := catalog.Pack("hello-universe", "1.2.0"); p == nil || p.Digest != second.Digest {
		t.Errorf("after the next listing: %v, want the new digest %s", p, second.Digest)
	}
}

// Concurrent reconciles needing the same pack fetch its archive once.
func TestConcurrentPullsFetchOnce(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := plainRegistry(t, srv, "packs")
	pushed, err := reg.Push(context.Background(), loadPack(t, filepath.Join(packCentral, "spegel-0.0.30")), false)
	if err != nil {
		t.Fatal(err)
	}
	blobs := &blobCounter{next: reg.client.Client.Transport, digest: pushed.Digest}
	reg.client.Client.Transport = blobs
	c := cache(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			p, err := (&Catalog{Registries: []*Registry{reg}, Cache: c}).Pack("spegel", "0.0.30")
			if err == nil && p.Digest != pushed.Digest {
				err = fmt.Errorf("digest %s", p.Digest)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := blobs.n.Load(); n != 1 {
		t.Errorf("the archive was fetched %d times by 8 concurrent pulls, want once", n)
	}
}

// blobCounter counts the fetches of one blob.
type blobCounter struct {
	next   http.RoundTripper
	digest string
	n      atomic.Int64
}

func (c *blobCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/blobs/"+c.digest) {
		c.n.Add(1)
	}
	return c.next.RoundTrip(req)
}
