package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/dashboard"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/packview"
	"strata.dev/strata/internal/registry"
)

// BenchmarkPages200Clusters loads each page of a management plane with 200
// clusters in several states, as a browser would (the whole HTML), acting
// as the local admin (strata up). The target is under 200 ms a
// page.
func BenchmarkPages200Clusters(b *testing.B) {
	cfg, c := managementPlane(b)
	fleet(b, c, 200)
	srv := serve(b, cfg, true)
	loadPages(b, srv, []benchPage{
		{"clusters", "/"},
		{"cluster", "/clusters/retail/site-002"},
		{"profiles", "/profiles"},
		{"profile-diff", "/profiles/strata-system/hello/diff?from=1.0.0&to=1.1.0"},
		{"inventory", "/inventory"},
	})
}

type benchPage struct{ name, path string }

// loadPages loads each page in a sub-benchmark, as a browser would (the
// whole body), and reports its size.
func loadPages(b *testing.B, srv *httptest.Server, pages []benchPage) {
	for _, page := range pages {
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

// BenchmarkPictures1000Clusters220Packs loads the pages with pictures on a
// management plane of 1,000 clusters whose registries list 220 pack
// versions: the Clusters page with the fleet at a glance, a cluster with
// its stack, the pack catalog, a pack's page (its README rendered once,
// then kept) and a logo. BenchmarkReadmeRender is the cost a pack page
// would pay on every request without the memo.
func BenchmarkPictures1000Clusters220Packs(b *testing.B) {
	cfg, c := managementPlane(b)
	fleet(b, c, 1000)
	preg := &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: controller.SharedNamespace}, Spec: v1.PackRegistrySpec{Endpoint: "registry.example.com"}}
	must(b, c.Create(context.Background(), preg))
	for i := range 220 {
		preg.Status.Entries = append(preg.Status.Entries, v1.PackEntry{Name: fmt.Sprintf("pack-%03d", i/4), Version: fmt.Sprintf("1.%d.0", i%4), Layer: "addon", Digest: fmt.Sprintf("sha256:%064x", i)})
	}
	preg.Status.Entries = append(preg.Status.Entries, v1.PackEntry{Name: "hello-universe", Version: "1.2.0", Layer: "addon", Digest: "sha256:" + strings.Repeat("c", 64)})
	must(b, c.Status().Update(context.Background(), preg))
	folders, err := pack.LoadCatalog(filepath.Join(packCentral, "hello-universe-1.2.0"))
	must(b, err)
	board, err := dashboard.New(dashboard.Options{Config: cfg, Local: true, PackFiles: registry.PackFiles{Folders: folders}})
	must(b, err)
	srv := httptest.NewServer(board.Handler())
	b.Cleanup(srv.Close)
	loadPages(b, srv, []benchPage{
		{"clusters", "/"},
		{"cluster", "/clusters/retail/site-002"},
		{"catalog", "/packs"},
		{"pack", "/packs/hello-universe/1.2.0"},
		{"logo", "/packs/hello-universe/1.2.0/logo"},
	})
}

func BenchmarkReadmeRender(b *testing.B) {
	md, err := os.ReadFile(filepath.Join(packCentral, "hello-universe-1.2.0", "README.md"))
	must(b, err)
	for b.Loop() {
		if _, err := packview.Readme(md); err != nil {
			b.Fatal(err)
		}
	}
}
