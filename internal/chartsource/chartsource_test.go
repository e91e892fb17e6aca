package chartsource_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/registry"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/chartsource"
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

	if _, err := chartsource.New(chartsource.Options{}).Fetch(src); err == nil {
		t.Error("pulled without credentials or the CA")
	}
	access := func(host string) (chartsource.HostAccess, bool) {
		if host != srv.Host {
			return chartsource.HostAccess{}, false
		}
		return chartsource.HostAccess{Username: user, Password: password, HTTPClient: httpClient}, true
	}
	ch, err := chartsource.New(chartsource.Options{Access: access}).Fetch(src)
	if err != nil {
		t.Fatalf("pull with the host's access: %v", err)
	}
	if ch.Metadata.Name != "spegel" || ch.Metadata.Version != "v0.0.30" {
		t.Errorf("chart %s %s", ch.Metadata.Name, ch.Metadata.Version)
	}
	wrong := func(string) (chartsource.HostAccess, bool) {
		return chartsource.HostAccess{Username: user, Password: "nope", HTTPClient: httpClient}, true
	}
	if _, err := chartsource.New(chartsource.Options{Access: wrong}).Fetch(src); err == nil || strings.Contains(err.Error(), "nope") {
		t.Errorf("wrong password: %v, want a refusal that does not show it", err)
	}
}
