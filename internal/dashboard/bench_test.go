package dashboard_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkPages200Clusters loads each page of a management plane with 200
// clusters in several states, as a browser would (the whole HTML), acting
// as the local admin (strata up). The target is under 200 ms a
// page.
func BenchmarkPages200Clusters(b *testing.B) {
	cfg, c := managementPlane(b)
	fleet(b, c, 200)
	srv := serve(b, cfg, true)
	for _, page := range []struct{ name, path string }{
		{"clusters", "/"},
		{"cluster", "/clusters/retail/site-002"},
		{"profiles", "/profiles"},
		{"profile-diff", "/profiles/strata-system/hello/diff?from=1.0.0&to=1.1.0"},
		{"inventory", "/inventory"},
	} {
		b.Run(page.name, func(b *testing.B) {
			var bytes int64
			for b.Loop() {
				res, err := http.Get(srv.URL + page.path)
				must(b, err)
				n, err := io.Copy(io.Discard, res.Body)
				must(b, err)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", page.path, res.StatusCode)
				}
				bytes = n
			}
			b.ReportMetric(float64(bytes)/1024, "KiB/page")
		})
	}
}
