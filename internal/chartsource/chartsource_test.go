package chartsource_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/testenv"
)

// A chart on an OCI registry that needs credentials and a private CA is
// pulled with the access given for its host (a pack registry's), and
// refused without it.
func TestOCIChartWithTheAccessOfItsHost(t *testing.T) {
	t.Parallel()
	const user, password = "charts", "chart-pw"
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Username: user, Password: password})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	data, err := os.ReadFile("../../../shared/testdata/pack-central/spegel-0.0.30/charts/spegel-0.0.30.tgz")
	if err != nil {
		t.Fatal(err)
	}
	pusher, err := registry.NewClient(registry.ClientOptBasicAuth(user, password), registry.ClientOptHTTPClient(httpClient))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.Push(data, srv.Host+"/charts/spegel:v0.0.30"); err != nil {
		t.Fatalf("push the chart: %v", err)
	}
	src := &v1.ChartSource{Repository: "oci://" + srv.Host + "/charts", Name: "spegel", Version: "v0.0.30"}

	if _, err := chartsource.New(chartsource.Options{}).Fetch(src, nil); err == nil {
		t.Error("pulled without credentials or the CA")
	}
	access := func(host string) (chartsource.HostAccess, bool) {
		if host != srv.Host {
			return chartsource.HostAccess{}, false
		}
		return chartsource.HostAccess{Username: user, Password: password, HTTPClient: httpClient}, true
	}
	ch, err := chartsource.New(chartsource.Options{Access: access}).Fetch(src, nil)
	if err != nil {
		t.Fatalf("pull with the host's access: %v", err)
	}
	if ch.Metadata.Name != "spegel" || ch.Metadata.Version != "v0.0.30" {
		t.Errorf("chart %s %s", ch.Metadata.Name, ch.Metadata.Version)
	}
	wrong := func(string) (chartsource.HostAccess, bool) {
		return chartsource.HostAccess{Username: user, Password: "nope", HTTPClient: httpClient}, true
	}
	if _, err := chartsource.New(chartsource.Options{Access: wrong}).Fetch(src, nil); err == nil || strings.Contains(err.Error(), "nope") {
		t.Errorf("wrong password: %v, want a refusal that does not show it", err)
	}
}

// A chart layer with verify is pulled only when its manifest carries a
// signature the trust accepts — cosign or notation — and refused, with the
// chart, its digest and the word signature, when unsigned, signed by
// another, or its tag moved after signing; with verify set and no trust
// given it is never pulled.
func TestVerifiedOCIChart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	data, err := os.ReadFile("../../../shared/testdata/pack-central/spegel-0.0.30/charts/spegel-0.0.30.tgz")
	must(t, err)
	pusher, err := registry.NewClient(registry.ClientOptPlainHTTP())
	must(t, err)
	repo, err := remote.NewRepository(srv.Host + "/charts/spegel")
	must(t, err)
	repo.PlainHTTP = true
	push := func(tag string) ocispec.Descriptor {
		t.Helper()
		_, err := pusher.Push(data, srv.Host+"/charts/spegel:"+tag)
		must(t, err)
		desc, err := repo.Resolve(ctx, tag)
		must(t, err)
		return desc
	}
	src := func(tag string, provider v1.SignatureProvider) *v1.ChartSource {
		return &v1.ChartSource{Repository: "oci://" + srv.Host + "/charts", Name: "spegel", Version: tag, Verify: &v1.SignatureVerification{Provider: provider}}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	pub, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	must(t, err)
	cosign, err := signature.NewCosign(pub)
	must(t, err)
	notary := testenv.NewNotationSigner(t, "acme")
	notation, err := signature.NewNotation(testenv.NotationPolicy("acme", srv.Host+"/charts/spegel"), map[string][]byte{"ca.acme.crt": notary.RootPEM})
	must(t, err)

	signed := push("v0.0.30")
	_, err = signature.SignCosign(ctx, repo, signed, key)
	must(t, err)
	notary.Sign(t, repo, signed)
	fetcher := chartsource.New(chartsource.Options{PlainHTTP: true})
	for _, c := range []struct {
		provider v1.SignatureProvider
		trust    signature.Verifier
	}{{v1.SignatureCosign, cosign}, {v1.SignatureNotation, notation}} {
		ch, err := fetcher.Fetch(src("v0.0.30", c.provider), c.trust)
		if err != nil {
			t.Fatalf("%s: a signed chart: %v", c.provider, err)
		}
		if ch.Metadata.Name != "spegel" {
			t.Errorf("%s: pulled %s", c.provider, ch.Metadata.Name)
		}
	}

	refused := func(s *v1.ChartSource, trust signature.Verifier, want ...string) {
		t.Helper()
		_, err := chartsource.New(chartsource.Options{PlainHTTP: true}).Fetch(s, trust)
		for _, w := range append([]string{"chart oci://" + srv.Host + "/charts/spegel:" + s.Version}, want...) {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s: got %v, want an error saying %q", s.Version, s.Verify.Provider, err, w)
			}
		}
	}
	_, err = pusher.Push(repack(t, data, "v0.0.31", "unsigned"), srv.Host+"/charts/spegel:v0.0.31")
	must(t, err)
	unsigned, err := repo.Resolve(ctx, "v0.0.31")
	must(t, err)
	refused(src("v0.0.31", v1.SignatureCosign), cosign, unsigned.Digest.String(), "signature: not signed")
	refused(src("v0.0.31", v1.SignatureNotation), notation, unsigned.Digest.String(), "signature: not signed")

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	_, err = signature.SignCosign(ctx, repo, unsigned, other)
	must(t, err)
	refused(src("v0.0.31", v1.SignatureCosign), cosign, "signature: a signature by another key")

	// The signed tag moved to other content.
	_, err = pusher.Push(repack(t, data, "v0.0.30", "moved"), srv.Host+"/charts/spegel:v0.0.30")
	must(t, err)
	refused(src("v0.0.30", v1.SignatureCosign), cosign, "signature: not signed")

	refused(src("v0.0.30", v1.SignatureCosign), nil, "nothing to check its signature with")
	plain := &v1.ChartSource{Repository: "https://charts.example", Name: "spegel", Version: "v0.0.30", Verify: &v1.SignatureVerification{Provider: v1.SignatureCosign}}
	if _, err := fetcher.Fetch(plain, cosign); err == nil || !strings.Contains(err.Error(), "chart.verify needs an oci:// repository") {
		t.Errorf("verify on an HTTP repository: %v", err)
	}
}

// repack returns the chart archive as version with a file added: other
// content of the same chart.
func repack(t *testing.T, archive []byte, version, note string) []byte {
	t.Helper()
	ch, err := loader.LoadArchive(bytes.NewReader(archive))
	must(t, err)
	ch.Metadata.Version = version
	ch.Files = append(ch.Files, &common.File{Name: "NOTE.txt", Data: []byte(note)})
	dir := t.TempDir()
	path, err := chartutil.Save(ch, dir)
	must(t, err)
	out, err := os.ReadFile(path)
	must(t, err)
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
