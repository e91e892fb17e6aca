package agent

import (
	"context"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// An agent's cache holds up to five watches open on the management plane. client-go
// asks the API server to end each after 5 to 10 minutes, and the reflector
// then opens it again: at ten thousand agents, over a hundred requests a
// second at rest, each authenticated, authorized and admitted to flow
// control, for nothing new. An agent asks for 30 to 60 minutes instead — what
// the API server gives a client that asks for nothing (its
// --min-request-timeout, doubled at most).
const (
	minWatch = 30 * time.Minute
	maxWatch = 2 * minWatch
)

// quiet makes a cache's watches the agent's: held longer, and without
// bookmarks (see quietWatches).
func quiet(opts cache.Options) cache.Options {
	opts.NewInformer = newInformer
	opts.DefaultEnableWatchBookmarks = ptr.To(false)
	return opts
}

// newInformer is the agent cache's informer: client-go's, with watches
// held longer and listed first.
func newInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(quietWatches{toolscache.ToListerWatcherWithContext(lw)}, obj, resync, indexers)
}

// quietWatches asks for each watch to last between minWatch and maxWatch;
// the cache asks for no bookmarks (quiet).
//
// The API server sends each watcher that asks for bookmarks one a minute:
// at ten thousand agents of five watches each, over 800 a second, each
// copied, encoded and written by the API server and decoded by an agent
// that learns nothing from it. Bookmarks let a reopened watch go on from a
// newer resource version; without them a watch goes on from the last event
// it saw, which the API server's watch cache usually still holds (it keeps
// the newest events of each resource, however old). When it does not, the
// reflector lists again: one small list, instead of a bookmark a minute.
// A dead connection is still found: client-go pings idle HTTP/2 connections.
//
// A watch-list (client-go's streamed initial list) needs bookmarks, so the
// reflector lists and then watches instead.
type quietWatches struct {
	toolscache.ListerWatcherWithContext
}

func (l quietWatches) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	seconds := int64((minWatch + rand.N(maxWatch-minWatch)) / time.Second)
	opts.TimeoutSeconds = &seconds
	return l.ListerWatcherWithContext.WatchWithContext(ctx, opts)
}

// IsWatchListSemanticsUnSupported tells client-go's reflector to list and
// then watch: see quietWatches.
func (quietWatches) IsWatchListSemanticsUnSupported() bool { return true }

// List and Watch make quietWatches a ListerWatcher too, as the informer's
// constructor asks; the reflector uses the context's methods.
func (l quietWatches) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l quietWatches) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}
