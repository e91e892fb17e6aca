package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/dashboard"
	"strata.dev/strata/internal/testenv"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func helloProfile(version string, masked bool) *v1.ClusterProfile {
	p := &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-" + version, Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{Name: "hello", Version: version, Type: v1.ProfileAddOn,
			Variables: []v1.Variable{{Name: "replicas", Default: "1"}},
			Layers:    []v1.Layer{{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"}}},
		},
	}
	if masked {
		p.Spec.Variables = append(p.Spec.Variables, v1.Variable{Name: "token", Masked: true, Default: "hunter2-very-secret"})
	}
	return p
}

// fleet writes clusters in several states: as the manager would leave them.
func fleet(t testing.TB, c client.Client, n int) {
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprintf("site-%03d", i)
		cl := &v1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "retail", Labels: map[string]string{"env": []string{"prod", "qa"}[i%2]}},
			Spec:       v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}}},
		}
		must(t, c.Create(ctx, cl))
		cl.Status = v1.ClusterStatus{
			Phase:    v1.ClusterReady,
			Profiles: []v1.ProfileStatus{{Name: "hello", Version: "1.0.0", Latest: "1.1.0"}},
			Layers: []v1.LayerStatus{{Name: "hello-universe", Profile: "hello", ProfileVersion: "1.0.0", Source: "pack", Package: "hello-universe", Version: "1.2.0", Phase: "Ready"},
				{Name: "mirror", Profile: "hello", ProfileVersion: "1.0.0", Source: "pack", Package: "spegel", Version: []string{"0.0.18", "0.0.30"}[i%3/2], Phase: "Ready"}},
		}
		switch i % 4 {
		case 1:
			cl.Status.Phase = v1.ClusterFailed
			cl.Status.Layers[1].Phase, cl.Status.Layers[1].Message = "Failed", "refused: uses policy/v1beta1 PodSecurityPolicy"
		case 2:
			cl.Status.PendingPlan = &v1.PendingPlan{Digest: fmt.Sprintf("plan%03d", i), Summary: "1 to upgrade", Layers: []v1.PlannedLayer{{
				Name: "hello-universe", Action: "upgrade", FromVersion: "1.2.0", ToVersion: "1.2.0", Reason: "profile hello 1.0.0 → hello 1.1.0",
				ValuesDiff: "--- applied\n+++ desired\n@@ -1,3 +1,3 @@\n manifests:\n   hello-universe:\n-    replicas: 1\n+    replicas: 3\n",
			}}}
		}
		must(t, c.Status().Update(ctx, cl))
	}
}

// tokenFor creates a service account allowed the verbs on Strata's kinds in
// the project, and returns a token of it.
func tokenFor(t *testing.T, cfg *rest.Config, name string, verbs ...string) string {
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cfg)
	_, err := cs.CoreV1().ServiceAccounts("retail").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(t, err)
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"strata.dev"}, Resources: []string{"clusters", "clusterprofiles"}, Verbs: verbs},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"list"}},
	}
	_, err = cs.RbacV1().Roles("retail").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.RbacV1().RoleBindings("retail").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "retail"}},
	}, metav1.CreateOptions{})
	must(t, err)
	tr, err := cs.CoreV1().ServiceAccounts("retail").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	return tr.Status.Token
}

func get(t *testing.T, srv *httptest.Server, path, token string) (int, string) {
	t.Helper()
	res, body := fetch(t, srv, path, token) //nolint:bodyclose // fetch closes it
	return res.StatusCode, string(body)
}

// fetch GETs a page as the token's user (none: no Authorization); the
// response's body is read and closed.
func fetch(t *testing.T, srv *httptest.Server, path, token string) (*http.Response, []byte) { //nolint:bodyclose // closed here
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	must(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	must(t, err)
	return res, body
}

// browserSession is what a browser holds after loading a page of the
// dashboard: its session cookie and the page's anti-forgery token.
type browserSession struct {
	cookie *http.Cookie
	token  string
}

var csrfMeta = regexp.MustCompile(`<meta name="strata-csrf" content="([^"]*)">`)

// openPage loads a page as a browser would and keeps its session.
func openPage(t *testing.T, srv *httptest.Server, path, token string) browserSession {
	t.Helper()
	res, body := fetch(t, srv, path, token) //nolint:bodyclose // fetch closes it
	var s browserSession
	for _, c := range res.Cookies() {
		if c.Name == "strata_session" {
			s.cookie = c
		}
	}
	if m := csrfMeta.FindSubmatch(body); m != nil {
		s.token = string(m[1])
	}
	// A request whose credentials are in its Authorization header gets no
	// token: a browser never sends that header by itself.
	if s.cookie == nil || (s.token == "") != (token != "") {
		t.Fatalf("GET %s: session cookie %v, anti-forgery token %q (%d)\n%s", path, s.cookie, s.token, res.StatusCode, body)
	}
	return s
}

// post sends a form as the browser holding s would, with the headers given.
func post(t *testing.T, srv *httptest.Server, path string, form url.Values, s browserSession, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if s.cookie != nil {
		req.AddCookie(s.cookie)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Do(req)
	must(t, err)
	res.Body.Close()
	return res.StatusCode
}

// approve posts the Approve form of a cluster's page, as its user.
func approve(t *testing.T, srv *httptest.Server, cluster, digest, token string) int {
	t.Helper()
	s := openPage(t, srv, "/clusters/retail/"+cluster, token)
	return post(t, srv, "/clusters/retail/"+cluster+"/approve", url.Values{"digest": {digest}, "csrf": {s.token}}, s,
		map[string]string{"Authorization": "Bearer " + token, "Origin": srv.URL, "Sec-Fetch-Site": "same-origin"})
}

// serve runs the dashboard of the management plane; local acts as its
// admin for requests without a token, as under strata up.
func serve(t testing.TB, cfg *rest.Config, local bool) *httptest.Server {
	board, err := dashboard.New(dashboard.Options{Config: cfg, Local: local})
	must(t, err)
	srv := httptest.NewServer(board.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func managementPlane(t testing.TB) (*rest.Config, client.Client) {
	cfg := testenv.Management(t, "../../config/crd/bases")
	c, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	for _, ns := range []string{controller.SharedNamespace, "retail"} {
		must(t, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	must(t, c.Create(context.Background(), helloProfile("1.0.0", false)))
	must(t, c.Create(context.Background(), helloProfile("1.1.0", true)))
	return cfg, c
}

// The pages show the live state as each user may see it; a viewer cannot
// approve, an operator approves the plan they saw and only that one.
func TestPagesFollowTheFleetAndRBAC(t *testing.T) {
	t.Parallel()
	cfg, c := managementPlane(t)
	fleet(t, c, 8)
	srv := serve(t, cfg, false)
	viewer := tokenFor(t, cfg, "viewer", "get", "list", "watch")
	operator := tokenFor(t, cfg, "operator", "get", "list", "watch", "patch")

	if code, body := get(t, srv, "/", ""); code != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) {
		t.Errorf("no token: %d, want 401 with the sign-in form", code)
	}
	// The viewer may not list across projects: the page says so.
	if code, _ := get(t, srv, "/", viewer); code != http.StatusForbidden {
		t.Errorf("viewer listing every project: %d, want 403", code)
	}
	code, body := get(t, srv, "/?project=retail", viewer)
	if code != http.StatusOK || strings.Count(body, "<tr data-cluster=") != 8 || !strings.Contains(body, "updates available") || !strings.Contains(body, "1.1.0 published") {
		t.Fatalf("clusters page: %d\n%s", code, body)
	}
	if _, body := get(t, srv, "/?project=retail&phase=Failed", viewer); strings.Count(body, "<tr data-cluster=") != 2 {
		t.Errorf("phase filter: want 2 Failed clusters\n%s", body)
	}
	if _, body := get(t, srv, "/?project=retail&label=env%3Dqa", viewer); strings.Count(body, "<tr data-cluster=") != 4 {
		t.Errorf("label filter: want 4 clusters")
	}
	if _, body := get(t, srv, "/?project=retail&pack=spegel@0.0.30", viewer); strings.Count(body, "<tr data-cluster=") != 2 {
		t.Errorf("pack filter: want the 2 clusters on spegel 0.0.30\n%s", body)
	}

	_, body = get(t, srv, "/clusters/retail/site-002", viewer)
	for _, want := range []string{"Pending plan: 1 to upgrade", `<td class="del">    replicas: 1</td><td class="add">    replicas: 3</td>`, "You may not approve"} {
		if !strings.Contains(body, want) {
			t.Errorf("cluster page for the viewer lacks %q\n%s", want, body)
		}
	}
	if code := approve(t, srv, "site-002", "plan002", viewer); code != http.StatusForbidden {
		t.Errorf("viewer approving: %d, want 403", code)
	}
	if _, body := get(t, srv, "/clusters/retail/site-002", operator); !strings.Contains(body, `id="approve"`) {
		t.Errorf("the operator gets no Approve button")
	}
	if code := approve(t, srv, "site-002", "stale-plan", operator); code != http.StatusConflict {
		t.Errorf("approving a plan that is no longer pending: %d, want 409", code)
	}
	if code := approve(t, srv, "site-002", "plan002", operator); code != http.StatusSeeOther {
		t.Errorf("operator approving: %d, want 303", code)
	}
	got := &v1.Cluster{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: "retail", Name: "site-002"}, got))
	if got.Spec.ApprovedPlan != "plan002" {
		t.Errorf("approved plan %q, want plan002", got.Spec.ApprovedPlan)
	}

	// Profiles, their users and a diff, with masked values kept out; the
	// warnings of a valid profile are listed under its Valid column.
	warned := &v1.ClusterProfile{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.1.0"}, warned))
	warned.Status.Conditions = []metav1.Condition{{Type: controller.ConditionValid, Status: metav1.ConditionTrue, Reason: "ResolvedWithWarnings", LastTransitionTime: metav1.Now(),
		Message: "the profile resolves with the packs the manager has\n" + controller.WarningPrefix + "values.yaml: pack x-1.0.0: charts: no charts.x section"}}
	must(t, c.Status().Update(context.Background(), warned))
	local := serve(t, cfg, true)
	_, body = get(t, local, "/profiles", "")
	if !strings.Contains(body, `data-profile="strata-system/hello"`) || !strings.Contains(body, "token (masked)") || !strings.Contains(body, "retail/site-000") ||
		!strings.Contains(body, "<summary>1 warning</summary><div>values.yaml: pack x-1.0.0: charts: no charts.x section</div>") {
		t.Errorf("profiles page:\n%s", body)
	}
	_, body = get(t, local, "/profiles/strata-system/hello/diff?from=1.0.0&to=1.1.0", "")
	if !strings.Contains(body, `<td class="add">  name: token</td>`) || strings.Contains(body, "hunter2") {
		t.Errorf("profile diff (masked default must not show):\n%s", body)
	}
	// Packs: the registries' pack versions with their users.
	preg := &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: controller.SharedNamespace}, Spec: v1.PackRegistrySpec{Endpoint: "registry.example.com"}}
	must(t, c.Create(context.Background(), preg))
	preg.Status.Entries = []v1.PackEntry{
		{Name: "spegel", Version: "0.0.18", Layer: "addon", Digest: "sha256:aaaa"},
		{Name: "spegel", Version: "0.0.30", Layer: "addon", Digest: "sha256:bbbb"},
		{Name: "hello-universe", Version: "1.2.0", Layer: "addon", Digest: "sha256:cccc"},
	}
	must(t, c.Status().Update(context.Background(), preg))
	_, body = get(t, local, "/packs", "")
	for _, want := range []string{`data-pack="spegel@0.0.18"`, "0.0.30 published", `<a href="/?pack=spegel@0.0.18">6 clusters</a>`, "strata-system/platform", "strata-system/hello-1.0.0"} {
		if !strings.Contains(body, want) {
			t.Errorf("packs page lacks %q\n%s", want, body)
		}
	}
	// Roll-outs: a halted one drawn as its waves, with its reason.
	halted := &v1.ClusterProfile{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.1.0"}, halted))
	halted.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary"}}}
	must(t, c.Update(context.Background(), halted))
	halted.Status.Rollout = &v1.RolloutStatus{Phase: v1.RolloutRolledBack, Reason: "1 clusters failed, at most 0 allowed: retail/site-001: not healthy on 1.1.0 within 5m0s",
		Waves: []v1.WaveStatus{
			{Name: "canary", Clusters: []v1.RolloutCluster{{Namespace: "retail", Name: "site-001", State: v1.ClusterRolloutRolledBack}}},
			{Name: "rest", Clusters: []v1.RolloutCluster{{Namespace: "retail", Name: "site-002", State: v1.ClusterRolloutPending}}},
		}}
	must(t, c.Status().Update(context.Background(), halted))
	_, body = get(t, local, "/rollouts", "")
	for _, want := range []string{`data-rollout="strata-system/hello@1.1.0"`, `<span class="badge RolledBack">RolledBack</span>`, "retail/site-001: not healthy on 1.1.0 within 5m0s",
		`<h3>canary</h3>`, `<div class="chip RolledBack" title=""><a href="/clusters/retail/site-001">retail/site-001</a> <span>RolledBack</span></div>`, `<h3>rest</h3>`} {
		if !strings.Contains(body, want) {
			t.Errorf("roll-outs page lacks %q\n%s", want, body)
		}
	}
	_, body = get(t, local, "/inventory", "")
	for _, want := range []string{`data-package="spegel@0.0.18"`, "6 clusters", `data-package="spegel@0.0.30"`, "2 clusters", `data-package="hello-universe@1.2.0"`, "8 clusters"} {
		if !strings.Contains(body, want) {
			t.Errorf("inventory lacks %q\n%s", want, body)
		}
	}
}

// The page's event stream says when a cluster changes.
func TestEventsTellThePageToRefresh(t *testing.T) {
	t.Parallel()
	cfg, c := managementPlane(t)
	fleet(t, c, 1)
	srv := serve(t, cfg, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?project=retail", nil)
	must(t, err)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	buf := make([]byte, 256)
	n, err := res.Body.Read(buf) // the stream's greeting
	must(t, err)
	if !strings.HasPrefix(string(buf[:n]), ": live") {
		t.Fatalf("stream starts with %q", buf[:n])
	}
	cl := &v1.Cluster{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: "retail", Name: "site-000"}, cl))
	patch := client.MergeFrom(cl.DeepCopy())
	cl.Labels["env"] = "staging"
	must(t, c.Patch(ctx, cl, patch))
	var seen strings.Builder
	for !strings.Contains(seen.String(), "event: changed") {
		n, err := res.Body.Read(buf)
		if err != nil {
			t.Fatalf("stream ended before the change event: %v; read %q", err, seen.String())
		}
		seen.Write(buf[:n])
	}
}

// No other web page the user's browser shows can read the local
// dashboard through a name rebound to 127.0.0.1, or approve a plan by
// posting to it: refused, and the cluster keeps its pending plan.
func TestOtherPagesCannotSteerTheDashboard(t *testing.T) {
	t.Parallel()
	cfg, c := managementPlane(t)
	fleet(t, c, 3)
	srv := serve(t, cfg, true)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	// Every page carries the headers that keep it out of frames and keep
	// scripts and requests to its own origin.
	res, err := http.Get(srv.URL + "/")
	must(t, err)
	res.Body.Close()
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	// DNS rebinding: the browser sends the attacker's name as Host.
	for _, host := range []string{fmt.Sprintf("rebind.example:%d", port), "rebind.example", fmt.Sprintf("127.0.0.1.nip.example:%d", port)} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/clusters/retail/site-002", nil)
		must(t, err)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		must(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusMisdirectedRequest || strings.Contains(string(body), "plan002") {
			t.Errorf("Host %s: %d, want 421 and nothing of the cluster\n%s", host, res.StatusCode, body)
		}
	}
	for _, host := range []string{fmt.Sprintf("localhost:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		must(t, err)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		must(t, err)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("Host %s (a name of the dashboard's own): %d", host, res.StatusCode)
		}
	}

	// Forged approvals: each is refused before it reaches the management
	// plane.
	page := openPage(t, srv, "/clusters/retail/site-002", "")
	other := openPage(t, srv, "/", "")
	path := "/clusters/retail/site-002/approve"
	sameOrigin := map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}
	for _, tc := range []struct {
		name    string
		form    url.Values
		session browserSession
		headers map[string]string
	}{
		{"form post from another site", url.Values{"digest": {"plan002"}, "csrf": {page.token}}, page, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{"fetch from another port of this machine", url.Values{"digest": {"plan002"}, "csrf": {page.token}}, page, map[string]string{"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		{"older browser, other origin", url.Values{"digest": {"plan002"}, "csrf": {page.token}}, page, map[string]string{"Origin": "http://evil.example"}},
		{"no anti-forgery token", url.Values{"digest": {"plan002"}}, page, sameOrigin},
		{"a made-up token", url.Values{"digest": {"plan002"}, "csrf": {"AAAA"}}, page, sameOrigin},
		{"another session's token", url.Values{"digest": {"plan002"}, "csrf": {other.token}}, page, sameOrigin},
		{"no session", url.Values{"digest": {"plan002"}, "csrf": {page.token}}, browserSession{}, sameOrigin},
	} {
		if code := post(t, srv, path, tc.form, tc.session, tc.headers); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, code)
		}
	}
	// A token in the URL is not taken: it would be logged along the way.
	if code := post(t, srv, path+"?csrf="+url.QueryEscape(page.token), url.Values{"digest": {"plan002"}}, page, sameOrigin); code != http.StatusForbidden {
		t.Errorf("token in the URL: %d, want 403", code)
	}
	got := &v1.Cluster{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: "retail", Name: "site-002"}, got))
	if got.Spec.ApprovedPlan != "" {
		t.Fatalf("a refused request approved plan %q", got.Spec.ApprovedPlan)
	}
	// The dashboard's own form, with its token, still works.
	if code := post(t, srv, path, url.Values{"digest": {"plan002"}, "csrf": {page.token}}, page, sameOrigin); code != http.StatusSeeOther {
		t.Errorf("the page's own form: %d, want 303", code)
	}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: "retail", Name: "site-002"}, got))
	if got.Spec.ApprovedPlan != "plan002" {
		t.Errorf("approved %q, want plan002", got.Spec.ApprovedPlan)
	}
}
