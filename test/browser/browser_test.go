// Package browser drives the dashboard in a real browser: Debian's
// chromium through npm's playwright-core, against a live management plane
// whose manager converges real workload clusters.
package browser

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/dashboard"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/testenv"
)

// Screenshots is where the browser test keeps a picture of each page; CI
// keeps the folder as an artifact.
const Screenshots = "../../artifacts/screenshots"

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDashboardInABrowser(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	// CI installs both and sets STRATA_BROWSER_TEST=required; elsewhere a
	// machine without them skips this test.
	skip := t.Skipf
	if os.Getenv("STRATA_BROWSER_TEST") == "required" {
		skip = t.Fatalf
	}
	if _, err := os.Stat(chromium); err != nil {
		skip("no browser at %s (apt-get install chromium): %v", chromium, err)
	}
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		skip("playwright-core is not installed (npm ci in test/browser): %v", err)
	}
	log.SetLogger(logr.Discard())
	cfg := testenv.Management(t, "../../config/crd/bases")
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	ctx := context.Background()
	for _, ns := range []string{controller.SharedNamespace, "shop"} {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	// Among the packs, a hostile one: its logo is HTML, its README script.
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs", testenv.HostilePack(t, "../../../shared/testdata/pack-central"))
	must(t, err)
	mgr, err := controller.NewManager(cfg, controller.ManagerOptions{Packs: packs, LayerTimeout: 2 * time.Minute})
	must(t, err)
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	must(t, c.Create(ctx, &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-1.0.0", Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{Name: "hello", Version: "1.0.0", Type: v1.ProfileAddOn, Layers: []v1.Layer{
			{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"}},
		}},
	}))
	// A draft version, to preview and publish from the Profiles page.
	must(t, c.Create(ctx, &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-1.1.0", Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{Name: "hello", Version: "1.1.0", Type: v1.ProfileAddOn, Draft: true, Layers: []v1.Layer{
			{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"}},
		}},
	}))
	// Three clusters in three states: Ready, waiting for approval, and
	// Stalled without credentials.
	for _, name := range []string{"auto", "manual", "nocreds"} {
		spec := v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}}}
		if name != "nocreds" {
			wc := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: name, Nodes: 1})
			must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Data: map[string][]byte{"kubeconfig": wc.Kubeconfig()}}))
			spec.KubeconfigSecretRef = &v1.SecretKeyRef{Name: name}
		}
		if name == "manual" {
			spec.UpdatePolicy = v1.UpdateManual
		}
		must(t, c.Create(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Spec: spec}))
	}
	var list v1.ClusterList
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		must(t, c.List(ctx, &list, client.InNamespace("shop")))
		settled := 0
		for _, cl := range list.Items {
			if cl.Status.Phase != "" && (cl.Name != "manual" || cl.Status.PendingPlan != nil) && (cl.Name != "auto" || cl.Status.Phase == v1.ClusterReady) {
				settled++
			}
		}
		return settled == 3, nil
	})
	must(t, err)

	// What the browser must find, from the live state.
	type row struct {
		Key     string `json:"key"`
		Phase   string `json:"phase"`
		Updates bool   `json:"updates"`
	}
	expect := struct {
		Clusters  []row          `json:"clusters"`
		Profiles  []string       `json:"profiles"`
		Inventory map[string]int `json:"inventory"`
		Approve   string         `json:"approve"`
		Digest    string         `json:"digest"`
		Attacker  string         `json:"attacker"`
		// Phases and Versions are the fleet picture's counts: clusters by
		// phase, and by the version of hello they run.
		Phases   map[string]int `json:"phases"`
		Versions map[string]int `json:"versions"`
		Hostile  string         `json:"hostile"`
	}{Profiles: []string{"strata-system/hello"}, Inventory: map[string]int{}, Approve: "shop/manual",
		Phases: map[string]int{"Ready": 0, "Pending": 0, "Failed": 0}, Versions: map[string]int{}, Hostile: "/packs/evil/1.0.0"}
	for _, cl := range list.Items {
		expect.Clusters = append(expect.Clusters, row{Key: "shop/" + cl.Name, Phase: string(cl.Status.Phase), Updates: cl.Status.PendingPlan != nil})
		expect.Phases[cmp.Or(string(cl.Status.Phase), "Pending")]++
		for _, p := range controller.AttachedProfiles(&cl) {
			expect.Versions[cmp.Or(p.Version, "none")]++
		}
		if "shop/"+cl.Name == expect.Approve {
			expect.Digest = cl.Status.PendingPlan.Digest
		}
		for _, l := range cl.Status.Layers {
			if l.Phase == "Ready" {
				expect.Inventory[l.Package+"@"+l.Version]++
			}
		}
	}
	// The dashboard as strata up serves it: acting as the admin, for the
	// names of the loopback address it listens on.
	srv := httptest.NewUnstartedServer(nil)
	// The hostile pack is listed by a registry, so its page is served.
	preg := &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: controller.SharedNamespace}, Spec: v1.PackRegistrySpec{Endpoint: "registry.example.com"}}
	must(t, c.Create(ctx, preg))
	preg.Status.Entries = []v1.PackEntry{{Name: "evil", Version: "1.0.0", Layer: "addon", Digest: "sha256:" + strings.Repeat("e", 64)}}
	must(t, c.Status().Update(ctx, preg))
	board, err := dashboard.New(dashboard.Options{Config: cfg, Local: true, Listen: srv.Listener.Addr().String(), PackFiles: registry.PackFiles{Folders: packs}})
	must(t, err)
	// What the server answered each POST, to check that the attacker's
	// were refused whatever the browser let its page see.
	var posts struct {
		sync.Mutex
		codes []int
	}
	handler := board.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			handler.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		handler.ServeHTTP(rec, r)
		posts.Lock()
		posts.codes = append(posts.codes, rec.code)
		posts.Unlock()
	})
	srv.Start()
	t.Cleanup(srv.Close)
	// Another web page the user has open: same machine, another port, so
	// another origin of the same site.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, attackPage(srv.URL, expect.Approve, expect.Digest, r.URL.Query().Get("by")))
	}))
	t.Cleanup(attacker.Close)
	expect.Attacker = attacker.URL
	shots, err := filepath.Abs(Screenshots)
	must(t, err)
	data, err := json.Marshal(expect)
	must(t, err)
	script := exec.Command("node", "dashboard.mjs")
	script.Env = append(os.Environ(), "DASHBOARD_URL="+srv.URL, "SCREENSHOTS="+shots, "EXPECT="+string(data), "CHROMIUM="+chromium)
	out, err := script.CombinedOutput()
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, out)
	}
	t.Logf("%s(screenshots in %s)", out, shots)

	// The click on Publish, two forged posts refused, then the user's own
	// click on Approve.
	posts.Lock()
	if !slices.Equal(posts.codes, []int{http.StatusSeeOther, http.StatusForbidden, http.StatusForbidden, http.StatusSeeOther}) {
		t.Errorf("POSTs answered %v, want Publish's 303, the attacker's two refused (403), then Approve's 303", posts.codes)
	}
	posts.Unlock()
	// Publish was clicked in the browser.
	published := &v1.ClusterProfile{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.1.0"}, published))
	if published.Spec.Draft {
		t.Error("hello 1.1.0 is still a draft after the click on Publish")
	}
	// The click reached the cluster: approved, and converged.
	manual := &v1.Cluster{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "manual"}, manual))
	if manual.Spec.ApprovedPlan == "" || manual.Status.Phase != v1.ClusterReady || manual.Status.PendingPlan != nil {
		t.Errorf("manual after the click: approved %q, phase %s, pending %v", manual.Spec.ApprovedPlan, manual.Status.Phase, manual.Status.PendingPlan)
	}
}

// attackPage is what a hostile page would do to approve a plan on the
// dashboard at base, knowing its digest: post a form to it, or send a
// fetch with the user's cookies and try to read a page.
func attackPage(base, cluster, digest, by string) string {
	approve := html.EscapeString(base + "/clusters/" + cluster + "/approve")
	if by == "form" {
		return `<!doctype html><form id="f" method="post" action="` + approve + `"><input name="digest" value="` + html.EscapeString(digest) + `"></form>
<script>document.getElementById("f").submit()</script>`
	}
	return `<!doctype html><pre id="out">running</pre><script>
(async () => {
  const out = [];
  try {
    await fetch(` + "`" + approve + "`" + `, {method: "POST", mode: "no-cors", credentials: "include", body: new URLSearchParams({digest: "` + html.EscapeString(digest) + `"})});
    out.push("post sent");
  } catch (e) { out.push("post failed: " + e.message); }
  try {
    const res = await fetch("` + html.EscapeString(base+"/clusters/"+cluster) + `", {credentials: "include"});
    out.push("read " + (await res.text()).length);
  } catch (e) { out.push("read refused"); }
  document.getElementById("out").textContent = out.join("; ");
})();
</script>`
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
