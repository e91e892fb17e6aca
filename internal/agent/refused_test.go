package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/config/flowcontrol"
	"strata.dev/strata/internal/agent"
	"strata.dev/strata/internal/controller"
)

// attempts records each request an agent sends, as client-go sends it
// (retries included), and the answer's status.
type attempts struct {
	mu  sync.Mutex
	all []attempt
}

type attempt struct {
	key  string // method and URL
	at   time.Time
	code int
}

func (a *attempts) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTrip(func(req *http.Request) (*http.Response, error) {
		at := time.Now()
		resp, err := next.RoundTrip(req)
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		a.mu.Lock()
		a.all = append(a.all, attempt{key: req.Method + " " + req.URL.String(), at: at, code: code})
		a.mu.Unlock()
		return resp, err
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// refusedSince counts, per request, the attempts answered 429 from the
// first 429 on, and says when that first one was.
func (a *attempts) refusedSince() (first time.Time, perRequest map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	perRequest = map[string]int{}
	for _, at := range a.all {
		if at.code != http.StatusTooManyRequests {
			continue
		}
		if first.IsZero() {
			first = at.at
		}
		perRequest[at.key]++
	}
	return first, perRequest
}

// holdTheAgentsSeat takes the one seat of the agents' priority level and
// keeps it: a ServiceAccount's create of a Cluster whose body never ends
// (the API server reads a body once flow control has let the request in).
// Until release is called, every other request of that level is refused.
func holdTheAgentsSeat(t *testing.T, f *hollowFleet) (release func()) {
	t.Helper()
	ctx := context.Background()
	const name = "seat-holder"
	must(t, f.c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}}))
	must(t, f.c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusters"}, Verbs: []string{"create", "get"}}}}))
	must(t, f.c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "fleet"}}}))
	cs, err := kubernetes.NewForConfig(f.mgmt)
	must(t, err)
	token, err := cs.CoreV1().ServiceAccounts("fleet").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	cfg := rest.AnonymousClientConfig(f.mgmt)
	cfg.BearerToken = token.Status.Token
	httpClient, err := rest.HTTPClientFor(cfg)
	must(t, err)
	url := strings.TrimSuffix(cfg.Host, "/") + "/apis/strata.dev/v1alpha1/namespaces/fleet/clusters"

	// hold sends the create whose body never ends; done closes when it
	// is answered, which it is at once if another request of the level
	// got the seat first (a poll below, say): then it is sent again.
	var stall *io.PipeWriter
	var done chan struct{}
	hold := func() {
		var body *io.PipeReader
		body, stall = io.Pipe()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
		must(t, err)
		req.ContentLength = 1 << 20
		req.Header.Set("Content-Type", "application/json")
		done = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			if resp, err := httpClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}(done)
		_, _ = stall.Write([]byte("{"))
	}
	hold()
	// The seat is held once another request of the level is refused
	// while the create is still waiting for its body.
	waitFor(t, "the agents' seat held", func() (bool, string) {
		select {
		case <-done:
			hold()
		default:
		}
		resp, err := httpClient.Get(url + "/anything")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		select {
		case <-done:
			return false, "the seat holder was answered: " + resp.Status
		default:
			return resp.StatusCode == http.StatusTooManyRequests, resp.Status
		}
	})
	return func() {
		_ = stall.CloseWithError(errors.New("released"))
		<-done
	}
}

// An API server whose flow control refuses every agent request (the
// agents' priority level at one seat, held, and rejecting the rest)
// answers 429. The agent waits longer after each refusal instead of asking
// again every second, as client-go alone does with the server's
// Retry-After; once the plane has room again, it joins and reports.
func TestARefusedAgentBacksOffThenGoesOn(t *testing.T) {
	f := newHollowFleet(t)
	ctx := context.Background()
	must(t, flowcontrol.Apply(ctx, f.mgmt))
	level := &flowcontrolv1.PriorityLevelConfiguration{}
	must(t, f.c.Get(ctx, types.NamespacedName{Name: "strata-agents"}, level))
	level.Spec.Limited = &flowcontrolv1.LimitedPriorityLevelConfiguration{
		NominalConcurrencyShares: ptr.To[int32](0), LendablePercent: ptr.To[int32](0), BorrowingLimitPercent: ptr.To[int32](0),
		LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject},
	}
	must(t, f.c.Update(ctx, level))
	release := holdTheAgentsSeat(t, f)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()

	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	must(t, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	must(t, f.c.Create(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "site-0000", Namespace: "fleet"}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}},
	}}))
	f.names = append(f.names, "site-0000")
	key := types.NamespacedName{Namespace: "fleet", Name: "site-0000"}
	join, err := agent.NewJoin(ctx, f.mgmt, key, "", time.Hour)
	must(t, err)
	rec := &attempts{}
	agentCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = agent.Run(agentCtx, agent.Options{Cluster: key, Join: join, Hollow: true, Packs: f.packs, Heartbeat: time.Second, ManagementTransport: rec.wrap})
	}()

	// Thirty seconds of refusals, from the first one.
	const window = 30 * time.Second
	var perRequest map[string]int
	waitFor(t, "thirty seconds of 429s", func() (bool, string) {
		var first time.Time
		first, perRequest = rec.refusedSince()
		return !first.IsZero() && time.Since(first) >= window, fmt.Sprintf("refused since %v: %v", first, perRequest)
	})
	most := 0
	for req, n := range perRequest {
		most = max(most, n)
		// Waits of 1 s and a random part of 1, 2, 4, 8, 16 and 32 s fit
		// six or seven attempts in thirty seconds, rarely nine, hardly
		// ever twelve; client-go alone makes thirty.
		if n > 12 {
			t.Errorf("%s was refused %d times in %s: the agent did not back off", req, n, window)
		}
	}
	t.Logf("attempts refused per request in %s: %v", window, perRequest)
	if most < 4 {
		t.Fatalf("no request was refused more than %d times in %s (%v): the plane did not refuse the agent", most, window, perRequest)
	}
	release()
	released = true
	waitFor(t, "the refused agent Ready once the plane has room", f.allOn(t, "1.0.0"))
}
