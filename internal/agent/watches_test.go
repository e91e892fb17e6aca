package agent

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/testenv"
)

// watchRequests records the path and query of every watch request sent,
// and counts the lists.
type watchRequests struct {
	next    http.RoundTripper
	mu      sync.Mutex
	watches []*url.URL
	lists   int
}

func (w *watchRequests) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	w.mu.Lock()
	if q.Get("watch") == "true" {
		w.watches = append(w.watches, req.URL)
	} else if req.Method == http.MethodGet {
		w.lists++
	}
	w.mu.Unlock()
	return w.next.RoundTrip(req)
}

// The agent's cache lists, then asks the API server to hold each watch for
// 30 to 60 minutes, not client-go's 5 to 10, and to send no bookmarks — but
// on the watch of its own Cluster, where a bookmark a minute keeps it from
// being refused as too old when it is opened again (cacheOptions) — and
// still sees what changes: on a real API server, through
// controller-runtime's cache and client-go's reflector.
func TestTheAgentsWatchesAreLongAndQuiet(t *testing.T) {
	t.Parallel()
	mgmt := rest.CopyConfig(testenv.Management(t, "../../config/crd/bases"))
	recorded := &watchRequests{}
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
	for _, ns := range []string{"site", controller.SharedNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	opts := cacheOptions(types.NamespacedName{Namespace: "site", Name: "edge-1"}, []string{"edge"})
	opts.Scheme = scheme()
	cc, err := cache.New(mgmt, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cc.Start(ctx) }()
	for _, o := range []client.Object{&v1.ClusterProfile{}, &v1.Cluster{}} {
		if _, err := cc.GetInformer(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if !cc.WaitForCacheSync(ctx) {
		t.Fatal("the cache never synced")
	}
	// Published after the cache synced: the watch, quiet as it is, brings it.
	published := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "edge-1.0.0", Namespace: "site", Labels: map[string]string{controller.ProfileLabel: "edge"}},
		Spec: v1.ClusterProfileSpec{Name: "edge", Version: "1.0.0", Type: v1.ProfileAddOn, Layers: []v1.Layer{{
			Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"},
		}}}}
	if err := c.Create(ctx, published); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return cc.Get(ctx, client.ObjectKeyFromObject(published), &v1.ClusterProfile{}) == nil, nil
	}); err != nil {
		t.Fatal("the cache never saw the profile published after it synced")
	}
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	if recorded.lists == 0 {
		t.Error("the cache never listed: it streamed its first list, which needs bookmarks")
	}
	clusterWatches, otherWatches := 0, 0
	for _, u := range recorded.watches {
		q := u.Query()
		n, err := strconv.Atoi(q.Get("timeoutSeconds"))
		if err != nil || n < int(minWatch/time.Second) || n > int(maxWatch/time.Second) {
			t.Errorf("%s asked for timeoutSeconds=%q, want %d to %d", u.Path, q.Get("timeoutSeconds"), int(minWatch/time.Second), int(maxWatch/time.Second))
		}
		if q.Has("sendInitialEvents") {
			t.Errorf("%s streamed its first list: %s", u.Path, q.Encode())
		}
		own, bookmarks := strings.HasSuffix(u.Path, "/clusters"), q.Get("allowWatchBookmarks") == "true"
		switch {
		case own && !bookmarks:
			t.Errorf("the watch of the agent's Cluster asked for no bookmarks: %s?%s", u.Path, q.Encode())
		case !own && bookmarks:
			t.Errorf("a watch asked for bookmarks: %s?%s", u.Path, q.Encode())
		}
		if own {
			clusterWatches++
		} else {
			otherWatches++
		}
	}
	if clusterWatches == 0 || otherWatches == 0 {
		t.Fatalf("watches sent: %d of the Cluster, %d of others; want both", clusterWatches, otherWatches)
	}
}
