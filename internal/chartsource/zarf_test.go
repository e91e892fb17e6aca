package chartsource_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/testenv"
)

const zarfArchive = "../../../shared/testdata/zarf/packages/compressed/zarf-package-test-amd64-0.0.1.tar.zst"

func accessFor(srv *testenv.Registry, user, password string) func(string) (chartsource.HostAccess, bool) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return func(host string) (chartsource.HostAccess, bool) {
		if host != srv.Host {
			return chartsource.HostAccess{}, false
		}
		return chartsource.HostAccess{Username: user, Password: password, HTTPClient: httpClient}, true
	}
}

// A real Zarf package, published in Zarf's layout to a registry with TLS
// and basic auth, is read with the access of its host; the same package
// is then served from the kept copy when the registry is down, also by a
// fetcher started afresh (a manager restarted).
func TestZarfPackagePublishedToARegistry(t *testing.T) {
	t.Parallel()
	const user, password = "zarf", "zarf-pw"
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Username: user, Password: password})
	files := testenv.ZarfArchiveFiles(t, zarfArchive)
	published := srv.PublishZarf(t, "packages/test", "0.0.1", "amd64", user, password, files)
	ref := "oci://" + srv.Host + "/packages/test:0.0.1"
	ctx := context.Background()

	if _, _, err := chartsource.New(chartsource.Options{Architecture: "amd64"}).FetchZarf(ctx, ref); err == nil {
		t.Error("fetched without the credentials and CA of the host")
	}
	wrong := accessFor(srv, user, "not-the-password")
	if _, _, err := chartsource.New(chartsource.Options{Access: wrong, Architecture: "amd64"}).FetchZarf(ctx, ref); err == nil || strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("wrong password: %v (want an error that does not show it)", err)
	}

	dir := t.TempDir()
	opts := chartsource.Options{Access: accessFor(srv, user, password), ZarfDir: dir, Architecture: "amd64"}
	src, d, err := chartsource.New(opts).FetchZarf(ctx, ref)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if d != published {
		t.Errorf("digest %s, want the published manifest %s", d, published)
	}
	if src.Package.Metadata.Name != "test" || len(src.Package.Components) == 0 || !src.Built {
		t.Errorf("package %+v", src.Package.Metadata)
	}

	srv.Stop()
	for name, f := range map[string]*chartsource.Fetcher{"same fetcher": chartsource.New(opts), "restarted": chartsource.New(opts)} {
		src, got, err := f.FetchZarf(ctx, ref)
		if err != nil || got != published || src.Package.Metadata.Name != "test" {
			t.Errorf("%s, registry down: %v %s", name, err, got)
		}
	}
	if _, _, err := chartsource.New(chartsource.Options{Access: opts.Access, Architecture: "amd64"}).FetchZarf(ctx, ref); err == nil {
		t.Error("a fetcher that never read the package served it with the registry down")
	}
}

// A published package is checked as an archive is: a layer changed after
// checksums.txt was written, a title leaving the package, an index without
// this architecture — each refused with what is wrong.
func TestBadPublishedZarfPackagesAreRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	files := testenv.ZarfArchiveFiles(t, zarfArchive)
	fetch := func(repo string) error {
		_, _, err := chartsource.New(chartsource.Options{PlainHTTP: true, Architecture: "amd64"}).FetchZarf(context.Background(), "oci://"+srv.Host+"/"+repo+":0.0.1")
		return err
	}

	tampered := map[string][]byte{}
	for k, v := range files {
		tampered[k] = v
	}
	component := append([]byte(nil), files["components/test.tar"]...)
	component[len(component)/2] ^= 0xff
	tampered["components/test.tar"] = component
	srv.PublishZarf(t, "tampered", "0.0.1", "amd64", "", "", tampered)
	if err := fetch("tampered"); err == nil || !strings.Contains(err.Error(), "components/test.tar") {
		t.Errorf("tampered component: %v", err)
	}

	escaping := map[string][]byte{"../outside": []byte("x")}
	for k, v := range files {
		escaping[k] = v
	}
	srv.PublishZarf(t, "escaping", "0.0.1", "amd64", "", "", escaping)
	if err := fetch("escaping"); err == nil || !strings.Contains(err.Error(), "want a path inside the package") {
		t.Errorf("title ../outside: %v", err)
	}

	srv.PublishZarf(t, "arm-only", "0.0.1", "arm64", "", "", files)
	srv.PublishZarf(t, "arm-only", "0.0.2", "skeleton", "", "", files)
	if err := fetch("arm-only"); err != nil {
		t.Errorf("an index with one deployable architecture is that package: %v", err)
	}
	_, _, err := chartsource.New(chartsource.Options{PlainHTTP: true, Architecture: "amd64"}).FetchZarf(context.Background(), "oci://"+srv.Host+"/arm-only:0.0.2")
	if err == nil || !strings.Contains(err.Error(), "architecture amd64") {
		t.Errorf("skeleton only: %v", err)
	}
	if err := fetch("missing"); err == nil || !strings.Contains(err.Error(), "/missing:0.0.1") {
		t.Errorf("not published: %v", err)
	}
}

// Older Zarf tagged the package's manifest itself; such a package pushed
// with the oras CLI (files titled by path, Zarf's media types) is read too.
func TestZarfManifestPushedWithOrasCLI(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dir := t.TempDir()
	files := testenv.ZarfArchiveFiles(t, zarfArchive)
	args := []string{"push", "--plain-http", "--config", "config.json:application/vnd.zarf.config.v1+json", srv.Host + "/legacy/test:0.0.1-amd64"}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, name+":application/vnd.zarf.layer.v1.blob")
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architecture":"amd64"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "oras"), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}
	src, _, err := chartsource.New(chartsource.Options{PlainHTTP: true}).FetchZarf(context.Background(), "oci://"+srv.Host+"/legacy/test:0.0.1-amd64")
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if src.Package.Metadata.Name != "test" {
		t.Errorf("package %q", src.Package.Metadata.Name)
	}
}
