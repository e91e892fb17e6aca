package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
)

// A draft version on the Profiles page shows its impact as the manager
// computed it — counts as a picture, each cluster's change or refusal
// linked to it — and a Publish button that publishes only the draft the
// user reviewed.
func TestDraftImpactAndPublish(t *testing.T) {
	t.Parallel()
	cfg, c := managementPlane(t)
	ctx := context.Background()
	draft := helloProfile("1.2.0", false)
	draft.Spec.Draft = true
	must(t, c.Create(ctx, draft))
	draft.Status.Impact = &v1.ImpactStatus{ObservedGeneration: draft.Generation, ComputedTime: metav1.Now(),
		Summary: v1.ImpactSummary{Change: 1, Refused: 1, Unknown: 1},
		Clusters: []v1.ClusterImpact{
			{Namespace: "retail", Name: "site-000", From: "1.1.0", Layers: []v1.LayerImpact{{Name: "hello-universe", Action: "upgrade", FromVersion: "1.1.1", ToVersion: "1.2.0"}, {Name: "config", Action: "remove"}}},
			{Namespace: "retail", Name: "site-001", From: "1.1.0", Refused: `variable "replicas": "5" does not match regex "^[1-3]$"`},
			{Namespace: "retail", Name: "site-002", Unknown: "not known: the manager has not reached this cluster yet"},
		}}
	must(t, c.Status().Update(ctx, draft))
	srv := serve(t, cfg, true)

	s := openPage(t, srv, "/profiles", "")
	_, body := get(t, srv, "/profiles", "")
	for _, want := range []string{
		`<span class="badge updates">draft</span>`, `data-outcome="change" data-count="1"`, `data-outcome="refused" data-count="1"`, `data-outcome="unknown" data-count="1"`,
		`<tr data-cluster="retail/site-000" data-outcome="change"><td><a href="/clusters/retail/site-000">retail/site-000</a></td>`,
		"hello-universe 1.1.1 → 1.2.0, config remove", `variable &#34;replicas&#34;: &#34;5&#34; does not match`, `<button class="publish">Publish 1.2.0</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("profiles page lacks %s\n%s", want, body)
		}
	}

	headers := map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}
	stale := url.Values{"generation": {fmt.Sprint(draft.Generation + 1)}, "csrf": {s.token}}
	if code := post(t, srv, "/profiles/strata-system/hello-1.2.0/publish", stale, s, headers); code != http.StatusConflict {
		t.Errorf("publishing another generation than the one reviewed: %d, want 409", code)
	}
	if code := post(t, srv, "/profiles/strata-system/hello-1.2.0/publish", url.Values{"generation": {fmt.Sprint(draft.Generation)}}, s, headers); code != http.StatusForbidden {
		t.Errorf("publishing without the anti-forgery token: %d, want 403", code)
	}
	got := &v1.ClusterProfile{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.2.0"}, got))
	if !got.Spec.Draft {
		t.Fatal("a refused publish published the draft")
	}
	ok := url.Values{"generation": {fmt.Sprint(draft.Generation)}, "csrf": {s.token}}
	if code := post(t, srv, "/profiles/strata-system/hello-1.2.0/publish", ok, s, headers); code != http.StatusSeeOther {
		t.Errorf("publish: %d, want 303", code)
	}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.2.0"}, got))
	if got.Spec.Draft {
		t.Error("the draft is still a draft after Publish")
	}
}
