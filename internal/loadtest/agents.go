// Package loadtest is `strata loadtest`: it measures how many agent-mode
// clusters a management plane holds, with hollow agents — the real agent
// code, resolving, planning and reporting as a real agent does, but
// applying to no cluster — many in one process.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/agent"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/stack"
)

// Label marks the Clusters a load test made, for --delete.
const Label = "strata.dev/loadtest"

// Options of an agents load test.
type Options struct {
	// Management is the caller's access to the management plane.
	Management *rest.Config
	Namespace  string
	// Clusters is how many agent-mode Clusters to make and join, named
	// from ClusterName(0) on; Run.Grow adds more.
	Clusters int
	// Profile and Range are what each cluster attaches.
	Profile, Range string
	// Packs, PackCacheDir and Heartbeat serve each hollow agent as they
	// would a real one.
	Packs        stack.Packs
	PackCacheDir string
	Heartbeat    time.Duration
	// Every is how often progress is printed; 10 s when zero.
	Every time.Duration
	Out   io.Writer
}

// Figures are what a load test measured.
type Figures struct {
	Elapsed time.Duration
	// Created, Registered (an agent reported) and Ready clusters.
	Created, Registered, Ready int
	// JoinsPerSecond are registrations per second, from the start.
	JoinsPerSecond float64
	// Requests the agents made of the management plane, and how many of
	// them were answered 429 (too many requests), in all.
	Requests, TooMany int64
	// MemoryMiB is this process's heap and goroutine stacks in use, with
	// every hollow agent in them.
	MemoryMiB float64
	// Stopped counts agents that ended before the load test did, and
	// LastStop says why the last one did.
	Stopped  int64
	LastStop string
	// Warned counts the warnings the agents logged (controllers started
	// again, a plane that did not answer, a token not renewed), and
	// LastWarning is the last one.
	Warned      int64
	LastWarning string
}

func (f Figures) String() string {
	return fmt.Sprintf("%5.0fs  created %d  registered %d (%.1f joins/s)  Ready %d  agents' requests %d (%.1f/s), 429s %d  memory %.0f MiB (%.2f MiB/agent)",
		f.Elapsed.Seconds(), f.Created, f.Registered, f.JoinsPerSecond, f.Ready, f.Requests, perSecond(f.Requests, f.Elapsed), f.TooMany, f.MemoryMiB, f.MemoryMiB/float64(max(f.Registered, 1))) + f.stops()
}

// stops says how many agents stopped and warned, and the last of each;
// nothing when none did.
func (f Figures) stops() string {
	var s string
	if f.Warned > 0 {
		s += fmt.Sprintf("  agents warned %d (the last: %s)", f.Warned, f.LastWarning)
	}
	if f.Stopped > 0 {
		s += fmt.Sprintf("  agents stopped %d (the last: %s)", f.Stopped, f.LastStop)
	}
	return s
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// workers bounds the Clusters created and the joins made at once.
const workers = 16

// Agents makes opts.Clusters agent-mode Clusters in opts.Namespace, joins
// a hollow agent to each, and prints figures every opts.Every until ctx
// ends; it returns the last figures. Bad options are refused before
// anything is made.
func Agents(ctx context.Context, opts Options) (Figures, error) {
	if opts.Every == 0 {
		opts.Every = 10 * time.Second
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	run, err := Start(ctx, opts)
	if err != nil {
		return Figures{}, err
	}
	joined := run.Joined()
	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	for {
		select {
		case err := <-joined:
			if err != nil {
				return run.Figures(), err
			}
			joined = nil // all joined: figures go on until interrupted
		case <-tick.C:
			fmt.Fprintln(opts.Out, run.Figures())
		case <-ctx.Done():
			f := run.Figures()
			fmt.Fprintln(opts.Out, f)
			return f, nil
		}
	}
}

// Run is a load test under way: its agents run until the context given
// to Start ends.
type Run struct {
	opts    Options
	c       client.Client
	tally   *tally
	started time.Time
	// next is the index of the next cluster Grow makes.
	next    int
	created atomic.Int64
	// requests and tooMany count the agents' requests and 429 answers.
	requests, tooMany atomic.Int64
	joined            <-chan error
	// stopped counts agents that ended before the load test; lastStop
	// holds why the last one did.
	stopped  atomic.Int64
	lastStop atomic.Value
	// warned counts the agents' warnings; lastWarning holds the last.
	warned      atomic.Int64
	lastWarning atomic.Value
}

// Start checks the options, then makes the clusters and joins their
// agents in the background (Joined says when all are joined).
func Start(ctx context.Context, opts Options) (*Run, error) {
	if opts.Clusters < 1 {
		return nil, fmt.Errorf("--clusters %d: want at least 1", opts.Clusters)
	}
	c, err := client.New(opts.Management, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		return nil, err
	}
	if err := checkProfile(ctx, c, opts); err != nil {
		return nil, err
	}
	clusters, err := cache.New(opts.Management, cache.Options{Scheme: controller.Scheme(),
		ByObject:          map[client.Object]cache.ByObject{&v1.Cluster{}: {Label: labels.SelectorFromSet(labels.Set{Label: "agents"})}},
		DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}}})
	if err != nil {
		return nil, err
	}
	counted := newTally(opts.Profile)
	informer, err := clusters.GetInformer(ctx, &v1.Cluster{})
	if err != nil {
		return nil, err
	}
	if _, err := informer.AddEventHandler(counted.handler()); err != nil {
		return nil, err
	}
	go func() { _ = clusters.Start(ctx) }()
	if !clusters.WaitForCacheSync(ctx) {
		return nil, errors.New("the management plane's Clusters could not be read")
	}
	r := &Run{opts: opts, c: c, tally: counted, started: time.Now()}
	r.joined = r.Grow(ctx, opts.Clusters)
	return r, nil
}

// Joined receives once every cluster of Start is made and its agent
// joined, or the first error.
func (r *Run) Joined() <-chan error { return r.joined }

// Grow makes n more clusters, named after the last ones, and joins their
// agents in the background, under the same watch of the load test's
// Clusters: a fleet grown in steps is counted once. The channel receives
// once all are joined, or the first error. Grow is called from one
// goroutine at a time.
func (r *Run) Grow(ctx context.Context, n int) <-chan error {
	first := r.next
	r.next += n
	joined := make(chan error, 1)
	go func() { joined <- r.makeAndJoin(ctx, first, n) }()
	return joined
}

// checkProfile refuses a profile with no version in the range among those
// a cluster of the namespace would see (its own and the shared ones).
func checkProfile(ctx context.Context, c client.Client, opts Options) error {
	if err := c.Get(ctx, types.NamespacedName{Name: opts.Namespace}, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("namespace %s: %w", opts.Namespace, err)
	}
	visible, err := controller.VisibleProfiles(ctx, c, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: opts.Namespace},
		Spec: v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: opts.Profile, Version: opts.Range}}}})
	if err != nil {
		return err
	}
	if _, ok := stack.FindProfile(visible, opts.Profile, opts.Range); !ok {
		return fmt.Errorf("--profile %s:%s: no published version of profile %q in %s in namespace %s or %s", opts.Profile, opts.Range, opts.Profile, opts.Range, opts.Namespace, controller.SharedNamespace)
	}
	return nil
}

// ClusterName is the name of the load test's i-th Cluster.
func ClusterName(i int) string { return fmt.Sprintf("loadtest-%05d", i) }

// makeAndJoin creates n Clusters from the first-th and joins an agent to
// each, workers at a time; the agents run until ctx ends.
func (t *Run) makeAndJoin(ctx context.Context, first, n int) error {
	work := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				if err := t.makeAndJoinOne(ctx, ClusterName(i)); err != nil && ctx.Err() == nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		select {
		case work <- first + i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return err
		case <-ctx.Done():
			close(work)
			wg.Wait()
			return nil
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (t *Run) makeAndJoinOne(ctx context.Context, name string) error {
	key := types.NamespacedName{Namespace: t.opts.Namespace, Name: name}
	c := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.opts.Namespace, Labels: map[string]string{Label: "agents"}},
		Spec: v1.ClusterSpec{Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: t.opts.Profile, Version: t.opts.Range}}}}
	if err := t.c.Create(ctx, c); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster %s: %w", key, err)
	}
	t.created.Add(1)
	// A manager registering thousands of clusters takes a while to make
	// each one's identity: how long is what the test measures.
	// It is looked for once a second: asking again at once, thousands of
	// joins would load the API server the manager is waiting on.
	var join agent.Join
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		join, err = agent.NewJoin(ctx, t.opts.Management, key, "", time.Hour)
		if errors.Is(err, agent.ErrNoServiceAccount) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	go func() {
		// An agent that stops before ctx ends is counted, with why: its
		// cluster stops being Ready, or never becomes so.
		err := agent.Run(ctx, agent.Options{
			Cluster: key, Join: join, Hollow: true, Packs: t.opts.Packs, PackCacheDir: t.opts.PackCacheDir,
			Heartbeat: t.opts.Heartbeat, Resync: hollowResync, ManagementTransport: t.count,
			Log: slog.New(&warnings{run: t, agent: key.String()}),
		})
		if ctx.Err() == nil {
			if err == nil {
				err = errors.New("it returned")
			}
			t.lastStop.Store(fmt.Sprintf("%s: %v", key, err))
			t.stopped.Add(1)
		}
	}()
	return nil
}

// hollowResync is how often a hollow agent looks for drift: a cluster that
// is not there does not drift, and the look, which asks the plane nothing,
// is CPU that a real agent spends on its own machine (every 5 minutes, as
// real agents do, ten thousand look 33 times a second).
const hollowResync = time.Hour

// count wraps an agent's transport to count its requests and 429s.
func (t *Run) count(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		t.requests.Add(1)
		resp, err := next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests {
			t.tooMany.Add(1)
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// ReadyOn is how many of the load test's clusters are Ready on that
// version of its profile, as its watch of them shows.
func (t *Run) ReadyOn(version string) int {
	_, _, n := t.tally.counts(version)
	return n
}

// Stops says how many agents warned and stopped before the load test did,
// and the last warning and why the last one stopped; "" when none did.
func (t *Run) Stops() string {
	return strings.TrimSpace(t.stops().stops())
}

// stops holds the figures of agents that warned and stopped, and none
// other.
func (t *Run) stops() Figures {
	last, _ := t.lastStop.Load().(string)
	warning, _ := t.lastWarning.Load().(string)
	return Figures{Stopped: t.stopped.Load(), LastStop: last, Warned: t.warned.Load(), LastWarning: warning}
}

// warnings is a hollow agent's log: it counts the agent's warnings and
// errors and keeps the last, and drops the rest (thousands of agents'
// lines would bury the figures).
type warnings struct {
	run   *Run
	agent string
	attrs []slog.Attr
}

func (w *warnings) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	line := w.agent + ": " + r.Message
	add := func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range w.attrs {
		add(a)
	}
	r.Attrs(add)
	w.run.lastWarning.Store(line)
	w.run.warned.Add(1)
	return nil
}

func (w *warnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &warnings{run: w.run, agent: w.agent, attrs: append(slices.Clone(w.attrs), attrs...)}
}

// WithGroup keeps the attributes flat: a warning is one line.
func (w *warnings) WithGroup(string) slog.Handler { return w }

// Figures counts the clusters from the load test's watch of them.
func (t *Run) Figures() Figures {
	f := t.stops()
	f.Elapsed, f.Created, f.Requests, f.TooMany = time.Since(t.started), int(t.created.Load()), t.requests.Load(), t.tooMany.Load()
	f.Registered, f.Ready, _ = t.tally.counts("")
	f.JoinsPerSecond = perSecond(int64(f.Registered), f.Elapsed)
	f.MemoryMiB = MemoryMiB()
	return f
}

// MemoryMiB is this process's heap and goroutine stacks in use: with a
// load test running, mostly its hollow agents. Goroutines are much of a
// hollow agent: its informers, queues and connections each run some.
func MemoryMiB() float64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse+m.StackInuse) / (1 << 20)
}

// Delete removes the Clusters a load test made in namespace, and waits
// until they are gone. Their agents applied nothing, so nothing is to be
// removed from any cluster: each is let go as orphaned.
func Delete(ctx context.Context, mgmt *rest.Config, namespace string, out io.Writer) error {
	c, err := client.New(mgmt, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		return err
	}
	var list v1.ClusterList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{Label: "agents"}); err != nil {
		return err
	}
	for i := range list.Items {
		cl := &list.Items[i]
		patch := client.MergeFrom(cl.DeepCopy())
		metav1.SetMetaDataAnnotation(&cl.ObjectMeta, controller.OrphanAnnotation, "true")
		if err := c.Patch(ctx, cl, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cluster %s/%s: %w", cl.Namespace, cl.Name, err)
		}
		if err := c.Delete(ctx, cl); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cluster %s/%s: %w", cl.Namespace, cl.Name, err)
		}
	}
	fmt.Fprintf(out, "deleting %d load-test clusters in %s...\n", len(list.Items), namespace)
	for {
		var left v1.ClusterList
		if err := c.List(ctx, &left, client.InNamespace(namespace), client.MatchingLabels{Label: "agents"}); err != nil {
			return err
		}
		if len(left.Items) == 0 {
			fmt.Fprintf(out, "deleted %d load-test clusters\n", len(list.Items))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d load-test clusters still there: %w", len(left.Items), ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
