package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/agent"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

// hollowFleet is a management plane with agent-mode clusters served by
// hollow agents: the real agent code, without clusters, many in this
// process.
type hollowFleet struct {
	mgmt  *rest.Config
	c     client.Client
	packs stack.Packs
	// names of the clusters, all in namespace "fleet".
	names []string

	mu   sync.Mutex
	stop []context.CancelFunc
}

func newHollowFleet(tb testing.TB) *hollowFleet {
	tb.Helper()
	log.SetLogger(logr.Discard())
	mgmt := testenv.Management(tb, "../../config/crd/bases")
	c, err := client.New(mgmt, client.Options{Scheme: controller.Scheme()})
	must(tb, err)
	for _, ns := range []string{controller.SharedNamespace, "fleet"} {
		must(tb, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	packs, err := pack.LoadCatalog(packDirs...)
	must(tb, err)
	f := &hollowFleet{mgmt: mgmt, c: c, packs: packs}
	tb.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, stop := range f.stop {
			stop()
		}
	})
	return f
}

// grow adds agent-mode clusters following hello 1.x until there are n,
// each joined by a hollow agent, eight at a time.
func (f *hollowFleet) grow(tb testing.TB, n int, heartbeat time.Duration) {
	tb.Helper()
	ctx := context.Background()
	from := len(f.names)
	for i := from; i < n; i++ {
		name := fmt.Sprintf("site-%04d", i)
		must(tb, f.c.Create(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}, Spec: v1.ClusterSpec{
			Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}},
		}}))
		f.names = append(f.names, name)
	}
	work := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				key := types.NamespacedName{Namespace: "fleet", Name: name}
				join, err := agent.NewJoin(ctx, f.mgmt, key, "", time.Hour)
				if err != nil {
					errs <- err
					continue
				}
				agentCtx, cancel := context.WithCancel(ctx)
				f.mu.Lock()
				f.stop = append(f.stop, cancel)
				f.mu.Unlock()
				go func() {
					if err := agent.Run(agentCtx, agent.Options{Cluster: key, Join: join, Hollow: true, Packs: f.packs, Heartbeat: heartbeat}); err != nil && agentCtx.Err() == nil {
						errs <- fmt.Errorf("hollow agent %s: %w", name, err)
					}
				}()
			}
		}()
	}
	for _, name := range f.names[from:] {
		work <- name
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
}

// allOn says how many clusters report every layer Ready on that version
// of hello.
func (f *hollowFleet) allOn(tb testing.TB, version string) func() (bool, string) {
	return func() (bool, string) {
		var list v1.ClusterList
		must(tb, f.c.List(context.Background(), &list, client.InNamespace("fleet")))
		done := readyOn(list.Items, version)
		return done == len(f.names), fmt.Sprintf("%d of %d clusters Ready on %s", done, len(f.names), version)
	}
}

// readyOn counts the clusters that report their one layer Ready on that
// version of hello.
func readyOn(clusters []v1.Cluster, version string) int {
	done := 0
	for _, cl := range clusters {
		if cl.Status.Phase == v1.ClusterReady && len(cl.Status.Profiles) == 1 && cl.Status.Profiles[0].Version == version && len(cl.Status.Layers) == 1 {
			done++
		}
	}
	return done
}

// Fifty hollow agents register, converge, and all follow a new profile
// version: the agent code and the manager's side of agent mode at a
// scale one machine's real clusters cannot reach.
func TestHollowAgentsFollowAProfile(t *testing.T) {
	f := newHollowFleet(t)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	must(t, f.c.Create(context.Background(), helloProfile("1.0.0", "1")))
	f.grow(t, 50, 30*time.Second)
	waitFor(t, "every hollow cluster Ready on 1.0.0", f.allOn(t, "1.0.0"))
	must(t, f.c.Create(context.Background(), helloProfile("1.1.0", "2")))
	waitFor(t, "every hollow cluster Ready on 1.1.0", f.allOn(t, "1.1.0"))
}

// A roll-out moves agent-mode clusters wave by wave as it does clusters in
// push mode: the agents read which version their wave may take, and their
// reports gate the next wave.
func TestRolloutAcrossAgents(t *testing.T) {
	f := newHollowFleet(t)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	ctx := context.Background()
	must(t, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	f.grow(t, 4, 2*time.Second)
	waitFor(t, "every agent Ready on 1.0.0", f.allOn(t, "1.0.0"))
	canary := &v1.Cluster{}
	must(t, f.c.Get(ctx, types.NamespacedName{Namespace: "fleet", Name: f.names[0]}, canary))
	canary.Labels = map[string]string{"ring": "canary"}
	must(t, f.c.Update(ctx, canary))

	next := helloProfile("1.1.0", "2")
	next.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{
		{Name: "canary", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}}},
		{Name: "everyone", Approval: true},
	}}
	must(t, f.c.Create(ctx, next))
	rollout := func() *v1.RolloutStatus {
		p := &v1.ClusterProfile{}
		must(t, f.c.Get(ctx, types.NamespacedName{Namespace: controller.SharedNamespace, Name: "hello-1.1.0"}, p))
		return p.Status.Rollout
	}
	waitFor(t, "the roll-out paused before wave everyone", func() (bool, string) {
		st := rollout()
		return st != nil && st.Phase == v1.RolloutPaused && strings.Contains(st.Reason, "wave everyone waits for approval"), fmt.Sprintf("%+v", st)
	})
	versions := map[string]string{}
	var list v1.ClusterList
	must(t, f.c.List(ctx, &list, client.InNamespace("fleet")))
	for _, cl := range list.Items {
		if len(cl.Status.Profiles) == 1 {
			versions[cl.Name] = cl.Status.Profiles[0].Version
		}
	}
	for i, name := range f.names {
		want := "1.0.0"
		if i == 0 {
			want = "1.1.0"
		}
		if versions[name] != want {
			t.Errorf("%s runs %q while wave everyone waits, want %s", name, versions[name], want)
		}
	}
	strataCLI(t, "rollout", "resume", "hello", "1.1.0", "-n", controller.SharedNamespace, "--kubeconfig", testenv.Kubeconfig(t, f.mgmt))
	waitFor(t, "every agent Ready on 1.1.0", f.allOn(t, "1.1.0"))
	waitFor(t, "the roll-out Completed", func() (bool, string) {
		st := rollout()
		return st != nil && st.Phase == v1.RolloutCompleted, fmt.Sprintf("%+v", st)
	})
}

// An agent holds only the profiles its cluster attaches; attaching another
// brings that one in (the agent starts again with it), and the cluster runs
// both.
func TestAnAgentFollowsWhatItsClusterAttaches(t *testing.T) {
	f := newHollowFleet(t)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	ctx := context.Background()
	must(t, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	extra := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "extra-1.0.0", Namespace: controller.SharedNamespace}, Spec: v1.ClusterProfileSpec{
		Name: "extra", Version: "1.0.0", Type: v1.ProfileAddOn,
		Layers: []v1.Layer{{Name: "extra", Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: default}\n"}}},
	}}
	must(t, f.c.Create(ctx, extra))
	f.grow(t, 1, 2*time.Second)
	waitFor(t, "the cluster Ready on hello 1.0.0", f.allOn(t, "1.0.0"))

	key := types.NamespacedName{Namespace: "fleet", Name: f.names[0]}
	c := &v1.Cluster{}
	must(t, f.c.Get(ctx, key, c))
	c.Spec.Profiles = append(c.Spec.Profiles, v1.ProfileAttachment{Name: "extra", Version: "1.0.0"})
	must(t, f.c.Update(ctx, c))
	waitFor(t, "the cluster Ready on hello and extra", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, f.c.Get(ctx, key, got))
		ok := got.Status.Phase == v1.ClusterReady && got.Status.ObservedGeneration == got.Generation && len(got.Status.Layers) == 2 && len(got.Status.Profiles) == 2 && got.Status.Profiles[1].Version == "1.0.0"
		return ok, fmt.Sprintf("%s %+v %+v", got.Status.Phase, got.Status.Profiles, got.Status.Conditions)
	})
}

// An agent whose first reads of the plane fail for longer than its
// controllers wait for them starts its controllers again, and serves its
// cluster once the plane answers: an agent at the edge has no one to
// restart it.
func TestAnAgentStartsAgainWhenItsFirstReadsFail(t *testing.T) {
	f := newHollowFleet(t)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	must(t, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	key := types.NamespacedName{Namespace: "fleet", Name: "site-0000"}
	must(t, f.c.Create(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}},
	}}))
	f.names = append(f.names, key.Name)
	join, err := agent.NewJoin(ctx, f.mgmt, key, "", time.Hour)
	must(t, err)

	// The plane answers everything but the profiles, until the agent has
	// started twice: each start reads its Cluster by name first.
	var refusing atomic.Bool
	refusing.Store(true)
	var starts atomic.Int32
	busy := func(next http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/clusters/"+key.Name) {
				starts.Add(1)
			}
			if refusing.Load() && strings.Contains(req.URL.Path, "/clusterprofiles") {
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Request: req,
					Header: http.Header{"Content-Type": {"application/json"}},
					Body:   io.NopCloser(strings.NewReader(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}`))}, nil
			}
			return next.RoundTrip(req)
		})
	}
	stopped := make(chan error, 1)
	go func() {
		stopped <- agent.Run(ctx, agent.Options{Cluster: key, Join: join, Hollow: true, Packs: f.packs, Heartbeat: 2 * time.Second,
			CacheSyncTimeout: 2 * time.Second, ManagementTransport: busy})
	}()
	waitFor(t, "the agent starting again", func() (bool, string) {
		select {
		case err := <-stopped:
			t.Fatalf("the agent stopped while the plane refused its first reads: %v", err)
		default:
		}
		return starts.Load() >= 2, fmt.Sprintf("started %d times", starts.Load())
	})
	refusing.Store(false)
	waitFor(t, "the cluster Ready on 1.0.0", f.allOn(t, "1.0.0"))
	select {
	case err := <-stopped:
		t.Fatalf("the agent stopped: %v", err)
	default:
	}
}
