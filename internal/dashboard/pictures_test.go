package dashboard_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/dashboard"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/testenv"
)

const packCentral = "../../../shared/testdata/pack-central"

// The pictures follow the live state: the fleet's counts by phase and by
// profile version, each cluster's stack bottom up with its phases and
// pending change, logos from the packs (placeholders where there is none
// or it is not an image), and a pack's page with its README sanitised.
func TestPicturesFollowTheFleet(t *testing.T) {
	t.Parallel()
	cfg, c := managementPlane(t)
	fleet(t, c, 8)
	folders, err := pack.LoadCatalog(filepath.Join(packCentral, "hello-universe-1.2.0"), testenv.HostilePack(t, packCentral))
	must(t, err)
	board, err := dashboard.New(dashboard.Options{Config: cfg, Local: true, PackFiles: registry.PackFiles{Folders: folders}})
	must(t, err)
	srv := httptest.NewServer(board.Handler())
	t.Cleanup(srv.Close)

	// Fleet at a glance: 6 Ready, 2 Failed; all 8 on hello 1.0.0, while
	// 1.1.0 is the newest published.
	_, body := get(t, srv, "/", "")
	for _, want := range []string{`data-phase="Ready" data-count="6"`, `data-phase="Failed" data-count="2"`,
		`href="/?profile=hello@1.0.0" data-profile="hello" data-version="1.0.0" data-count="8">1.0.0: 8</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("fleet picture lacks %s\n%s", want, body)
		}
	}
	if _, body := get(t, srv, "/?profile=hello@1.0.0", ""); strings.Count(body, "<tr data-cluster=") != 8 {
		t.Errorf("the fleet picture's link to hello 1.0.0 lists %d clusters, want 8", strings.Count(body, "<tr data-cluster="))
	}

	// A cluster's stack: bands in install order with their phase in words;
	// the pending plan's change drawn on its band.
	_, body = get(t, srv, "/clusters/retail/site-001", "")
	bands := regexp.MustCompile(`<li class="band (\w+)" data-layer="([^"]+)" data-phase="(\w+)"`).FindAllStringSubmatch(body, -1)
	if len(bands) != 2 || bands[0][2] != "hello-universe" || bands[0][3] != "Ready" || bands[1][2] != "mirror" || bands[1][3] != "Failed" {
		t.Errorf("stack bands %v\n%s", bands, body)
	}
	for _, want := range []string{`<img src="/packs/hello-universe/1.2.0/logo" alt="hello-universe logo"`, `<span class="band-phase">Failed</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("cluster page lacks %s", want)
		}
	}
	_, body = get(t, srv, "/clusters/retail/site-002", "")
	if !strings.Contains(body, `data-layer="hello-universe" data-phase="Ready" data-change="values change"`) {
		t.Errorf("the pending change is not drawn\n%s", body)
	}

	// A version change is drawn as an arrow; a roll-out in progress shows
	// its wave and how many clusters are through.
	moving := &v1.Cluster{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: "retail", Name: "site-006"}, moving))
	moving.Status.PendingPlan.Layers[0].ToVersion = "1.3.0"
	must(t, c.Status().Update(context.Background(), moving))
	if _, body := get(t, srv, "/clusters/retail/site-006", ""); !strings.Contains(body, `data-change="1.2.0 → 1.3.0"`) || !strings.Contains(body, `<span class="band-change">1.2.0 → 1.3.0</span>`) {
		t.Errorf("the version change is not drawn\n%s", body)
	}
	rolling := &v1.ClusterProfile{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.1.0"}, rolling))
	rolling.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary"}}}
	must(t, c.Update(context.Background(), rolling))
	rolling.Status.Rollout = &v1.RolloutStatus{Phase: v1.RolloutProgressing, Waves: []v1.WaveStatus{
		{Name: "canary", Clusters: []v1.RolloutCluster{{Namespace: "retail", Name: "site-000", State: v1.ClusterRolloutHealthy}}},
		{Name: "rest", Clusters: []v1.RolloutCluster{{Namespace: "retail", Name: "site-003", State: v1.ClusterRolloutUpdating}, {Namespace: "retail", Name: "site-004", State: v1.ClusterRolloutPending}}},
	}}
	must(t, c.Status().Update(context.Background(), rolling))
	if _, body := get(t, srv, "/", ""); !regexp.MustCompile(`data-rollout="hello@1.1.0"><a href="/rollouts">hello 1.1.0</a> <span class="badge Progressing">Progressing</span> wave rest · 1 of 3 healthy`).MatchString(body) {
		t.Errorf("the roll-out in progress is not shown\n%s", body)
	}

	// Logos: the pack's own, re-encoded; a placeholder for a pack whose
	// logo is HTML and for one not on this machine; never sniffed.
	res, logo := fetch(t, srv, "/packs/hello-universe/1.2.0/logo", "") //nolint:bodyclose // fetch closes it
	if res.Header.Get("Content-Type") != "image/png" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("logo headers %v", res.Header)
	}
	if _, err := png.Decode(bytes.NewReader(logo)); err != nil {
		t.Errorf("the logo served is not a PNG: %v", err)
	}
	for _, path := range []string{"/packs/evil/1.0.0/logo", "/packs/spegel/0.0.30/logo"} {
		res, body := fetch(t, srv, path, "") //nolint:bodyclose // fetch closes it
		if res.Header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(body, []byte("<svg ")) || bytes.Contains(body, []byte("script")) {
			t.Errorf("%s: %v %s, want the drawn placeholder", path, res.Header.Get("Content-Type"), body)
		}
	}

	// A pack of the pack folders, which no registry lists, has its page.
	if code, body := get(t, srv, "/packs/hello-universe/1.2.0", ""); code != http.StatusOK || !strings.Contains(body, "in pack folders") || !strings.Contains(body, `<article class="readme">`) {
		t.Errorf("folder pack page: %d\n%s", code, body)
	}

	// A pack's page: the README rendered with nothing that runs or calls out.
	preg := &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: controller.SharedNamespace}, Spec: v1.PackRegistrySpec{Endpoint: "registry.example.com"}}
	must(t, c.Create(context.Background(), preg))
	preg.Status.Entries = []v1.PackEntry{{Name: "evil", Version: "1.0.0", Layer: "addon", Digest: "sha256:dddd"}, {Name: "hello-universe", Version: "1.2.0", Layer: "addon", Digest: "sha256:cccc"}}
	must(t, c.Status().Update(context.Background(), preg))
	res, page := fetch(t, srv, "/packs/evil/1.0.0", "") //nolint:bodyclose // fetch closes it
	readme := string(page)
	if i := strings.Index(readme, `<article class="readme">`); i >= 0 {
		readme = readme[i:]
	} else {
		t.Fatalf("no README on the pack page (%d)\n%s", res.StatusCode, page)
	}
	if !strings.Contains(readme, "<em>text</em>") {
		t.Errorf("README not rendered:\n%s", readme)
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "tracker.example"} {
		if strings.Contains(readme, bad) {
			t.Errorf("README keeps %s:\n%s", bad, readme)
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("pack page CSP %q", res.Header.Get("Content-Security-Policy"))
	}
	if _, body := get(t, srv, "/packs", ""); !strings.Contains(body, `<a class="pack" href="/packs/hello-universe/1.2.0"><img src="/packs/hello-universe/1.2.0/logo"`) {
		t.Errorf("the packs page shows no logo linking to the pack's page\n%s", body)
	}
	if code, _ := get(t, srv, "/packs/nothing/9.9.9", ""); code != http.StatusNotFound {
		t.Errorf("a pack in no registry: %d, want 404", code)
	}
	// Profile versions are drawn as their stacks too.
	if _, body := get(t, srv, "/profiles", ""); !strings.Contains(body, `<li class="band " data-layer="hello-universe">`) {
		t.Errorf("profiles page draws no stack\n%s", body)
	}
}
