// Package chaos runs a fleet through a profile roll-out while faults come
// together at random: the manager killed again and again, the pack
// registry gone, workload API servers crashing, an agent cut off. It then
// checks what a platform team relies on: every cluster on the new version
// and Ready, one Helm revision per changed layer, nothing removed, no wave
// skipped, no Ready shown that was not true.
//
// `go test ./test/chaos` runs a short version (CI); `make chaos` the full
// one: 20 clusters, ten manager kills, a minute without the registry, three
// API server crashes and an agent cut off for a minute. The seed is printed
// first; -chaos.seed replays a run.
package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/testenv"
)

var (
	full     = flag.Bool("chaos.full", false, "the full schedule: 20 clusters, 10 manager kills, the registry gone 1 minute, 3 API server crashes, an agent cut off 1 minute")
	clusters = flag.Int("chaos.clusters", 0, "how many clusters (one of them in agent mode); 20 with -chaos.full, else 5")
	seed     = flag.Uint64("chaos.seed", 0, "seed of the fault schedule; a new one when 0 (printed, so a failure replays)")
)

const (
	ns          = "fleet"
	profileName = "chaos"
	pcDir       = "../../../shared/testdata/pack-central"
)

// schedule is the shape of a run.
type schedule struct {
	clusters, managerKills, apiServerCrashes int
	// window is when faults start, counted from the publication of the
	// version; outage is how long the registry and the agent stay away.
	window, outage, soak time.Duration
}

func shape() schedule {
	s := schedule{clusters: 5, managerKills: 3, apiServerCrashes: 1, window: 80 * time.Second, outage: 20 * time.Second, soak: 15 * time.Second}
	if *full {
		s = schedule{clusters: 20, managerKills: 10, apiServerCrashes: 3, window: 4 * time.Minute, outage: time.Minute, soak: 40 * time.Second}
	}
	if *clusters > 0 {
		s.clusters = *clusters
	}
	s.clusters = max(s.clusters, 3) // a canary, an early wave and the agent in the rest
	s.apiServerCrashes = min(s.apiServerCrashes, s.clusters-1)
	return s
}

// The versions: each roll-out changes hello-universe's values and a pack
// layer that needs a pull from the registry; "config" never changes.
//
//	1.0.0  hello-universe (1 replica), config
//	1.1.0  hello-universe (2), config, spegel 0.0.18   — the baseline roll-out, no faults
//	1.2.0  hello-universe (3), config, spegel 0.0.30   — the roll-out under faults
func profileVersion(version string, soak time.Duration) *v1.ClusterProfile {
	replicas := map[string]string{"1.0.0": "1", "1.1.0": "2", "1.2.0": "3"}[version]
	layers := []v1.Layer{
		{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"},
			Values: "manifests:\n  hello-universe:\n    replicas: " + replicas + "\n"},
		{Name: "config", Kind: v1.LayerAddon, Namespace: "chaos", Manifests: &v1.ManifestSource{
			Inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chaos-config, namespace: chaos}\ndata: {kept: \"yes\"}\n"}},
	}
	switch version {
	case "1.1.0":
		layers = append(layers, v1.Layer{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.18"}})
	case "1.2.0":
		layers = append(layers, v1.Layer{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.30"}})
	}
	soakFor := &metav1.Duration{Duration: soak}
	half := intstr.FromString("50%")
	return &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: profileName + "-" + version, Namespace: ns},
		Spec: v1.ClusterProfileSpec{
			Name: profileName, Version: version, Type: v1.ProfileAddOn, Layers: layers,
			Rollout: &v1.RolloutPolicy{Waves: []v1.Wave{
				{Name: "canary", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"wave": "canary"}}, Soak: soakFor},
				{Name: "early", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"wave": "early"}}, Soak: soakFor},
				{Name: v1.RestWave, MaxParallel: &half},
			}},
		},
	}
}

func layerNames(version string) []string {
	var names []string
	for _, l := range profileVersion(version, 0).Spec.Layers {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

// member is one cluster of the fleet.
type member struct {
	name, wave string
	agent      bool
	cp         *controlplane.ControlPlane
	cs         *kubernetes.Clientset
}

func TestChaos(t *testing.T) {
	s := shape()
	runSeed := *seed
	if runSeed == 0 {
		runSeed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos seed %d (replay: make chaos SEED=%d%s); %d clusters, %d manager kills, %d API server crashes, outages of %s within %s",
		runSeed, runSeed, map[bool]string{true: "", false: " FULL=0"}[*full], s.clusters, s.managerKills, s.apiServerCrashes, s.outage, s.window)
	rng := rand.New(rand.NewPCG(runSeed, runSeed^0x5a17a))
	ctx := context.Background()

	// Statuses are what this test reads; the client library's logger is off.
	log.SetLogger(logr.Discard())
	bin := buildStrata(t)
	mgmt := testenv.Management(t, "../../config/crd/bases")
	kubeconfig := testenv.Kubeconfig(t, mgmt)
	c, err := client.New(mgmt, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	for _, n := range []string{controller.SharedNamespace, ns} {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}))
	}

	// The packs come from a registry only, so that its outage matters.
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	pushPacks(t, reg, "hello-universe-1.2.0", "spegel-0.0.18", "spegel-0.0.30")
	must(t, c.Create(ctx, &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "chaos", Namespace: ns},
		Spec: v1.PackRegistrySpec{Endpoint: reg.Host, BaseContentPath: "chaos", PlainHTTP: true, SyncInterval: &metav1.Duration{Duration: 10 * time.Second}}}))

	manager := &managerProcess{bin: bin, kubeconfig: kubeconfig, cache: t.TempDir(), log: filepath.Join(t.TempDir(), "manager.log"),
		metrics: freeAddr(t), mgmtHost: strings.TrimSuffix(strings.TrimPrefix(mgmt.Host, "https://"), "/")}
	manager.start(t)
	t.Cleanup(func() { manager.stop(t) })

	fleet := startFleet(t, s.clusters)
	must(t, c.Create(ctx, profileVersion("1.0.0", s.soak)))
	agentLink := joinFleet(t, c, bin, kubeconfig, mgmt, fleet)

	t.Cleanup(func() {
		if t.Failed() {
			for _, v := range []string{"1.1.0", "1.2.0"} {
				p := &v1.ClusterProfile{}
				if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: profileName + "-" + v}, p) == nil && p.Status.Rollout != nil {
					t.Logf("roll-out of %s: %+v", v, *p.Status.Rollout)
				}
			}
		}
	})
	watch := watchFleet(t, mgmt, fleet)
	watch.waitConverged(t, "1.0.0", 5*time.Minute)
	t.Logf("fleet of %d Ready on 1.0.0", len(fleet))

	// Baseline: the same kind of roll-out with no fault. The watch tells
	// when the fleet converged, so this test's own reads cost the
	// management plane nearly nothing; the requests counted are the
	// manager's, from its own client metrics.
	before := manager.requests(t)
	start := time.Now()
	watch.expect("1.1.0", s.soak)
	must(t, c.Create(ctx, profileVersion("1.1.0", s.soak)))
	watch.waitConverged(t, "1.1.0", 5*time.Minute)
	waitRollout(t, c, "1.1.0", v1.RolloutCompleted)
	baseline, baseCost := time.Since(start), manager.requests(t).minus(before)
	t.Logf("baseline roll-out to 1.1.0 without faults: %.0f s; the manager made %s", baseline.Seconds(), baseCost)

	layersBefore := recordLayers(t, fleet)
	before = manager.requests(t)
	start = time.Now()
	watch.expect("1.2.0", s.soak)
	must(t, c.Create(ctx, profileVersion("1.2.0", s.soak)))
	lastFault := runFaults(t, rng, s, start, manager, reg, fleet, agentLink)
	watch.waitConverged(t, "1.2.0", 10*time.Minute)
	waitRollout(t, c, "1.2.0", v1.RolloutCompleted)
	// Converged means also that the manager running now — restarted by
	// the last fault, perhaps — has been through every cluster and found
	// them so.
	waitUntil(t, "the running manager through every cluster", 5*time.Minute, func() (bool, string) {
		n, err := manager.reconciled()
		return err == nil && n >= float64(len(fleet)), fmt.Sprintf("%v clusters reconciled (%v)", n, err)
	})
	converged, cost := time.Now(), manager.requests(t).minus(before)
	ended := rolloutOf(t, c, "1.2.0").EndTime.Time
	t.Logf("roll-out to 1.2.0 under faults: completed %.0f s after publication (baseline %.0f s, ×%.1f); the last fault ended at %.0f s, the fleet converged %.1f s after it; the manager made %s (×%.2f and ×%.2f the baseline)",
		ended.Sub(start).Seconds(), baseline.Seconds(), ended.Sub(start).Seconds()/baseline.Seconds(), lastFault.Sub(start).Seconds(),
		converged.Sub(lastFault).Seconds(), cost, cost.mgmt/baseCost.mgmt, cost.fleet/baseCost.fleet)

	checkLayers(t, fleet, layersBefore)
	checkWaves(t, c, "1.2.0", s.soak)
	for _, v := range watch.violations() {
		t.Error(v)
	}
}

// buildStrata builds the strata binary the manager and the agent run from.
func buildStrata(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strata")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/strata").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func pushPacks(t *testing.T, reg *testenv.Registry, dirs ...string) {
	t.Helper()
	ep, err := registry.ParseEndpoint(reg.Endpoint("chaos"))
	must(t, err)
	pusher, err := registry.New(ep, registry.Options{PlainHTTP: true})
	must(t, err)
	for _, d := range dirs {
		p, problems := pack.Load(filepath.Join(pcDir, d))
		must(t, problems.Err())
		_, err := pusher.Push(context.Background(), p, false)
		must(t, err)
	}
}

// managerProcess is `strata manager` in a process of its own, so that it
// can be killed as a node failure or an OOM kill would.
type managerProcess struct {
	bin, kubeconfig, cache, log string
	// metrics is the address of its metrics endpoint; mgmtHost the
	// management plane's host:port, which tells its requests apart.
	metrics, mgmtHost string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// counted is what the processes killed so far had made.
	counted requestCount
}

func (m *managerProcess) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(m.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	must(t, err)
	// Leader election on, as deployed: a new manager takes over once the
	// killed one's lease runs out. The pack cache is a volume that
	// survives it.
	cmd := exec.Command(m.bin, "manager", "--kubeconfig", m.kubeconfig, "--metrics-addr", m.metrics, "--health-addr", "0",
		"--leader-elect-namespace", controller.SharedNamespace, "--pack-cache", m.cache, "--layer-timeout", "2m", "--resync", "1m")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
}

// kill ends the manager with SIGKILL: no lease released, nothing flushed.
// What it had made is read first.
func (m *managerProcess) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now, err := m.scrape(); err == nil {
		m.counted = m.counted.plus(now)
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// requestCount is how many requests the manager made to the management
// plane and to the clusters.
type requestCount struct{ mgmt, fleet float64 }

func (a requestCount) plus(b requestCount) requestCount {
	return requestCount{a.mgmt + b.mgmt, a.fleet + b.fleet}
}
func (a requestCount) minus(b requestCount) requestCount {
	return requestCount{a.mgmt - b.mgmt, a.fleet - b.fleet}
}
func (a requestCount) String() string {
	return fmt.Sprintf("%.0f requests to the management plane and %.0f to the clusters", a.mgmt, a.fleet)
}

// requests is what every manager process of the test made so far. A
// manager just started may not serve its metrics yet: wait for them.
func (m *managerProcess) requests(t *testing.T) requestCount {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var now requestCount
	waitUntil(t, "the manager's metrics", time.Minute, func() (bool, string) {
		var err error
		now, err = m.scrape()
		return err == nil, fmt.Sprint(err)
	})
	return m.counted.plus(now)
}

// scrape reads rest_client_requests_total from the running manager.
func (m *managerProcess) scrape() (requestCount, error) {
	var out requestCount
	err := m.metric("rest_client_requests_total{", func(labels string, n float64) {
		if strings.Contains(labels, `host="`+m.mgmtHost+`"`) {
			out.mgmt += n
		} else {
			out.fleet += n
		}
	})
	return out, err
}

// reconciled is how many Cluster reconciles the running manager finished.
func (m *managerProcess) reconciled() (float64, error) {
	var sum float64
	err := m.metric("controller_runtime_reconcile_total{", func(labels string, n float64) {
		if strings.Contains(labels, `controller="cluster"`) {
			sum += n
		}
	})
	return sum, err
}

// metric calls add with the labels and value of each sample of a metric
// (its name and the opening brace) the running manager serves.
func (m *managerProcess) metric(prefix string, add func(labels string, n float64)) error {
	res, err := http.Get("http://" + m.metrics + "/metrics")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		cut := strings.LastIndexByte(line, ' ')
		var n float64
		if _, err := fmt.Sscan(line[cut+1:], &n); err == nil {
			add(line[len(prefix):cut], n)
		}
	}
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func (m *managerProcess) stop(t *testing.T) {
	m.mu.Lock()
	_ = m.cmd.Process.Signal(os.Interrupt)
	<-m.done
	m.mu.Unlock()
	if t.Failed() {
		// The whole log outlives the test's folders: it is long, and says
		// what every manager did.
		kept := filepath.Join(os.TempDir(), fmt.Sprintf("strata-chaos-%d-manager.log", os.Getpid()))
		data, _ := os.ReadFile(m.log)
		if err := os.WriteFile(kept, data, 0o600); err == nil {
			t.Logf("the managers' log is kept in %s", kept)
		}
	}
}

// startFleet starts the workload clusters, four at a time: the first is
// the canary, a quarter the early wave, the rest the last wave, whose last
// cluster runs in agent mode.
func startFleet(t *testing.T, n int) []*member {
	t.Helper()
	fleet := make([]*member, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range fleet {
		m := &member{name: fmt.Sprintf("c%02d", i), wave: v1.RestWave, agent: i == n-1}
		switch {
		case i == 0:
			m.wave = "canary"
		case i <= max(1, n/4):
			m.wave = "early"
		}
		fleet[i] = m
		dir := t.TempDir()
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			m.cp, errs[i] = controlplane.Start(context.Background(), controlplane.Options{
				Name: m.name, Dir: dir, ControllerManager: true, Scheduler: true, Nodes: 1})
		})
	}
	wg.Wait()
	for i, m := range fleet {
		if m.cp != nil {
			t.Cleanup(m.cp.Stop)
		}
		must(t, errs[i])
		cs, err := m.cp.Clientset()
		must(t, err)
		m.cs = cs
	}
	return fleet
}

// joinFleet creates the Clusters, each following 1.x: imported ones with
// their kubeconfig, the agent one joined by the line join-command prints,
// reaching the management plane through a link that can be cut.
func joinFleet(t *testing.T, c client.Client, bin, kubeconfig string, mgmt *rest.Config, fleet []*member) *testenv.Proxy {
	t.Helper()
	ctx := context.Background()
	var agent *member
	for _, m := range fleet {
		cl := &v1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Name: m.name, Namespace: ns, Labels: map[string]string{"wave": m.wave}},
			Spec:       v1.ClusterSpec{UpdatePolicy: v1.UpdateAutomatic, Profiles: []v1.ProfileAttachment{{Name: profileName, Version: "1.x"}}},
		}
		if m.agent {
			cl.Spec.Mode, agent = v1.ModeAgent, m
		} else {
			must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: m.name + "-kubeconfig", Namespace: ns},
				Data: map[string][]byte{"kubeconfig": m.cp.Kubeconfig()}}))
			cl.Spec.KubeconfigSecretRef = &v1.SecretKeyRef{Name: m.name + "-kubeconfig"}
		}
		must(t, c.Create(ctx, cl))
	}
	server, err := url.Parse(mgmt.Host)
	must(t, err)
	link := testenv.StartProxy(t, server.Host)
	// join-command needs the Cluster's ServiceAccount, which the manager
	// makes.
	var line string
	waitUntil(t, "the join line of "+agent.name, time.Minute, func() (bool, string) {
		out, err := exec.Command(bin, "cluster", "join-command", agent.name, "-n", ns, "--kubeconfig", kubeconfig, "--server", "https://"+link.Addr).CombinedOutput()
		line = strings.TrimSpace(string(out))
		return err == nil, line
	})
	args := strings.Fields(line)
	if len(args) < 2 || args[0] != "strata" || args[1] != "agent" {
		t.Fatalf("join-command printed %q", line)
	}
	logPath := filepath.Join(t.TempDir(), "agent.log")
	logFile, err := os.Create(logPath)
	must(t, err)
	cmd := exec.Command(bin, append(args[1:], "--kubeconfig", agent.cp.KubeconfigPath(), "--pack-cache", t.TempDir(), "--heartbeat", "2s")...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 3000 {
				data = data[len(data)-3000:]
			}
			t.Logf("--- agent log (tail) ---\n%s", data)
		}
	})
	return link
}

// runFaults plays a seeded schedule of faults from start and returns when
// the last has ended: the moment the fleet has everything back.
func runFaults(t *testing.T, rng *rand.Rand, s schedule, start time.Time, manager *managerProcess, reg *testenv.Registry, fleet []*member, agentLink *testenv.Proxy) time.Time {
	t.Helper()
	at := func(d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(d))) }
	type fault struct {
		at   time.Duration
		what string
		run  func() error
	}
	var faults []fault
	// The manager: killed at random moments, started again after a pause.
	var kills []time.Duration
	for range s.managerKills {
		kills = append(kills, at(s.window))
	}
	slices.Sort(kills)
	var managerFaults sync.Mutex // one kill at a time: a kill waits for the restart before
	for _, k := range kills {
		pause := time.Duration(500+rng.IntN(3000)) * time.Millisecond
		faults = append(faults, fault{k, fmt.Sprintf("manager killed, restarted after %s", pause), func() error {
			managerFaults.Lock()
			defer managerFaults.Unlock()
			manager.kill()
			time.Sleep(pause) // the outage itself: nothing to wait on
			manager.start(t)
			return nil
		}})
	}
	faults = append(faults, fault{at(s.window - s.outage), fmt.Sprintf("pack registry stopped for %s", s.outage), func() error {
		reg.Stop()
		time.Sleep(s.outage)
		return reg.Start()
	}})
	faults = append(faults, fault{at(s.window - s.outage), fmt.Sprintf("agent cluster %s cut off for %s", fleet[len(fleet)-1].name, s.outage), func() error {
		agentLink.Cut()
		time.Sleep(s.outage)
		agentLink.Restore(t)
		return nil
	}})
	imported := fleet[:len(fleet)-1]
	for _, i := range rng.Perm(len(imported))[:s.apiServerCrashes] {
		m := imported[i]
		down := time.Duration(3+rng.IntN(15)) * time.Second
		faults = append(faults, fault{at(s.window), fmt.Sprintf("API server of %s (%s wave) killed, back after %s", m.name, m.wave, down), func() error {
			if err := m.cp.KillAPIServer(); err != nil {
				return err
			}
			time.Sleep(down)
			return m.cp.RestartAPIServer(context.Background())
		}})
	}
	slices.SortFunc(faults, func(a, b fault) int { return int(a.at - b.at) })
	for _, f := range faults {
		t.Logf("  at %5.1f s: %s", f.at.Seconds(), f.what)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	var errs []error
	for _, f := range faults {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(f.at)))
			err := f.run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.what, err))
			}
			if now := time.Now(); now.After(last) {
				last = now
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	t.Logf("faults over %.0f s after publication", last.Sub(start).Seconds())
	return last
}

func rolloutOf(t *testing.T, c client.Client, version string) *v1.RolloutStatus {
	t.Helper()
	p := &v1.ClusterProfile{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: profileName + "-" + version}, p))
	return p.Status.Rollout
}

func waitRollout(t *testing.T, c client.Client, version string, phase v1.RolloutPhase) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("the roll-out of %s %s", version, phase), 2*time.Minute, func() (bool, string) {
		r := rolloutOf(t, c, version)
		return r != nil && r.Phase == phase, fmt.Sprintf("%+v", r)
	})
}

// layerState is what a cluster runs of one layer: its Helm revision and
// the identity of its main object, which changes if it is ever removed.
type layerState struct {
	revision string
	uid      string
}

func recordLayers(t *testing.T, fleet []*member) map[string]map[string]layerState {
	t.Helper()
	out := map[string]map[string]layerState{}
	for _, m := range fleet {
		out[m.name] = layersOf(t, m)
	}
	return out
}

func layersOf(t *testing.T, m *member) map[string]layerState {
	t.Helper()
	ctx := context.Background()
	out := map[string]layerState{}
	secrets, err := m.cs.CoreV1().Secrets(controller.SharedNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	must(t, err)
	for _, s := range secrets.Items {
		name := s.Labels["name"]
		if rev := s.Labels["version"]; len(rev) > len(out[name].revision) || (len(rev) == len(out[name].revision) && rev > out[name].revision) {
			out[name] = layerState{revision: rev}
		}
	}
	uid := func(layer string, get func() (metav1.Object, error)) {
		o, err := get()
		if err != nil {
			t.Errorf("cluster %s: the object of layer %s: %v", m.name, layer, err)
			return
		}
		st := out[layer]
		st.uid = string(o.GetUID())
		out[layer] = st
	}
	uid("config", func() (metav1.Object, error) {
		return m.cs.CoreV1().ConfigMaps("chaos").Get(ctx, "chaos-config", metav1.GetOptions{})
	})
	uid("hello-universe", func() (metav1.Object, error) {
		return m.cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
	})
	uid("spegel", func() (metav1.Object, error) {
		return m.cs.AppsV1().DaemonSets("spegel-system").Get(ctx, "spegel", metav1.GetOptions{})
	})
	return out
}

// checkLayers: the changed layers have exactly one new Helm revision, the
// unchanged one none, and no layer's object was removed and made again.
func checkLayers(t *testing.T, fleet []*member, before map[string]map[string]layerState) {
	t.Helper()
	wantRevisions := map[string]int{"hello-universe": 1, "spegel": 1, "config": 0}
	for _, m := range fleet {
		after := layersOf(t, m)
		for layer, added := range wantRevisions {
			var b, a int
			_, _ = fmt.Sscan(before[m.name][layer].revision, &b)
			_, _ = fmt.Sscan(after[layer].revision, &a)
			if a-b != added {
				t.Errorf("cluster %s, layer %s: Helm revision %d → %d, want %d new; its history: %s", m.name, layer, b, a, added, history(t, m, layer))
			}
			if before[m.name][layer].uid != after[layer].uid {
				t.Errorf("cluster %s, layer %s: its object was removed and made again (uid %s → %s)", m.name, layer, before[m.name][layer].uid, after[layer].uid)
			}
		}
	}
}

// history lists a layer's Helm release records: revision, status, when.
func history(t *testing.T, m *member, layer string) string {
	t.Helper()
	secrets, err := m.cs.CoreV1().Secrets(controller.SharedNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + layer})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, s := range secrets.Items {
		out = append(out, fmt.Sprintf("v%s %s (%s)", s.Labels["version"], s.Labels["status"], s.CreationTimestamp.Format(time.TimeOnly)))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// checkWaves reads the roll-out's record: every cluster Healthy in its
// wave, each wave started only after the one before was healthy and soaked.
func checkWaves(t *testing.T, c client.Client, version string, soak time.Duration) {
	t.Helper()
	r := rolloutOf(t, c, version)
	var prev *v1.WaveStatus
	for i := range r.Waves {
		w := &r.Waves[i]
		for _, cl := range w.Clusters {
			if cl.State != v1.ClusterRolloutHealthy {
				t.Errorf("roll-out of %s: cluster %s of wave %s is %s: %s", version, cl.Name, w.Name, cl.State, cl.Message)
			}
		}
		if prev != nil && prev.HealthyTime != nil && w.StartTime != nil && w.StartTime.Before(&metav1.Time{Time: prev.HealthyTime.Add(soak - time.Second)}) {
			t.Errorf("roll-out of %s: wave %s started at %s, before wave %s was healthy (%s) and soaked %s", version, w.Name, w.StartTime, prev.Name, prev.HealthyTime, soak)
		}
		prev = w
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.WaitUntil(t, what, timeout, cond)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
