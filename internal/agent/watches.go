package agent

import (
	"context"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// An agent's cache holds up to five watches open on the management plane. client-go
// asks the API server to end each after 5 to 10 minutes, and the reflector
// then opens it again: at ten thousand agents, over a hundred requests a
// second at rest, each authenticated, authorized and admitted to flow
// control, for nothing new. An agent asks for 30 to 60 minutes instead — what
// the API server gives a client that asks for nothing (its
// --min-request-timeout, doubled at most) — and bookmarks keep its place.
const (
	minWatch = 30 * time.Minute
	maxWatch = 2 * minWatch
)

// newInformer is the agent cache's informer: client-go's, with watches
// held longer.
func newInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(longWatches{toolscache.ToListerWatcherWithContext(lw)}, obj, resync, indexers)
}

// longWatches asks for each watch to last between minWatch and maxWatch.
type longWatches struct {
	toolscache.ListerWatcherWithContext
}

func (l longWatches) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	seconds := int64((minWatch + rand.N(maxWatch-minWatch)) / time.Second)
	opts.TimeoutSeconds = &seconds
	return l.ListerWatcherWithContext.WatchWithContext(ctx, opts)
}

// List and Watch make longWatches a ListerWatcher too, as the informer's
// constructor asks; the reflector uses the context's methods.
func (l longWatches) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l longWatches) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}
