package agent

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/testenv"
)

// watchTimeouts records the timeoutSeconds of every watch request sent.
type watchTimeouts struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (w *watchTimeouts) RoundTrip(req *http.Request) (*http.Response, error) {
	if q := req.URL.Query(); q.Get("watch") == "true" {
		w.mu.Lock()
		w.seen = append(w.seen, q.Get("timeoutSeconds"))
		w.mu.Unlock()
	}
	return w.next.RoundTrip(req)
}

// A cache built as the agent's asks the API server to hold each watch for
// 30 to 60 minutes, not client-go's 5 to 10: on a real API server, through
// controller-runtime's cache and client-go's reflector.
func TestTheAgentsWatchesLastHalfAnHourOrMore(t *testing.T) {
	t.Parallel()
	mgmt := rest.CopyConfig(testenv.Management(t, "../../config/crd/bases"))
	recorded := &watchTimeouts{}
	mgmt.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		recorded.next = rt
		return recorded
	}
	c, err := client.New(mgmt, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "site"}}); err != nil {
		t.Fatal(err)
	}
	cc, err := cache.New(mgmt, cache.Options{Scheme: scheme(), NewInformer: newInformer, DefaultNamespaces: map[string]cache.Config{"site": {}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cc.Start(ctx) }()
	if _, err := cc.GetInformer(ctx, &v1.ClusterProfile{}); err != nil {
		t.Fatal(err)
	}
	if !cc.WaitForCacheSync(ctx) {
		t.Fatal("the cache never synced")
	}
	var seen []string
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		recorded.mu.Lock()
		defer recorded.mu.Unlock()
		seen = append([]string(nil), recorded.seen...)
		return len(seen) > 0, nil
	}); err != nil {
		t.Fatal("no watch request was sent")
	}
	for _, s := range seen {
		n, err := strconv.Atoi(s)
		if err != nil || n < int(minWatch/time.Second) || n > int(maxWatch/time.Second) {
			t.Errorf("a watch asked for timeoutSeconds=%q, want %d to %d", s, int(minWatch/time.Second), int(maxWatch/time.Second))
		}
	}
}
