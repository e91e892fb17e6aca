package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"strata.dev/strata/internal/dashboard"
)

// A team's dashboard runs on every replica behind one Service: a page
// served by one replica posts to another. The token is made from the
// sign-in cookie, so both agree; without that cookie's token it is refused.
func TestReplicasAgreeOnTheAntiForgeryToken(t *testing.T) {
	replica := func() *httptest.Server {
		board, err := dashboard.New(dashboard.Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}})
		must(t, err)
		srv := httptest.NewServer(board.Handler())
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := replica(), replica()
	signedIn := &http.Cookie{Name: "strata_token", Value: "alice-token"}
	// A page of replica a, as alice's browser loads it (its API call fails:
	// the page is the error page, which carries the token all the same).
	req, err := http.NewRequest(http.MethodGet, a.URL+"/", nil)
	must(t, err)
	req.AddCookie(signedIn)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	body := make([]byte, 64<<10)
	n, _ := res.Body.Read(body)
	res.Body.Close()
	m := csrfMeta.FindSubmatch(body[:n])
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "strata_session" {
			session = c
		}
	}
	if m == nil || len(m[1]) == 0 || session == nil {
		t.Fatalf("replica a gave no token or session:\n%s", body[:n])
	}
	post := func(srv *httptest.Server, token string, cookies ...*http.Cookie) int {
		form := url.Values{"token": {"alice-token"}, "csrf": {token}}
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
		must(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noRedirect.Do(req)
		must(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(b, string(m[1]), signedIn, session); code != http.StatusSeeOther {
		t.Errorf("replica b, with replica a's token: %d, want 303", code)
	}
	if code := post(b, "forged", signedIn, session); code != http.StatusForbidden {
		t.Errorf("replica b, with a forged token: %d, want 403", code)
	}
	other := &http.Cookie{Name: "strata_token", Value: "mallory-token"}
	if code := post(b, string(m[1]), other, session); code != http.StatusForbidden {
		t.Errorf("replica b, alice's token with another sign-in: %d, want 403", code)
	}
}
