package agent_test

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/config/flowcontrol"
	"strata.dev/strata/internal/loadtest"
	"strata.dev/strata/internal/testenv"
)

// agentFleetSizes are BenchmarkAgentFleet's fleet sizes.
var agentFleetSizes = flag.String("agent-fleet.sizes", "10,100,1000", "BenchmarkAgentFleet: the sizes the fleet grows to, comma separated")

// agentFleetHeartbeat is how often BenchmarkAgentFleet's agents renew their
// Leases: the dial between how soon a lost agent shows and what a fleet
// costs the API server at rest.
var agentFleetHeartbeat = flag.Duration("agent-fleet.heartbeat", 30*time.Second, "BenchmarkAgentFleet: the agents' --heartbeat")

// agentFleetFlowControl, when set, applies Strata's own flow control
// (config/flowcontrol, which the chart ships and `strata up` applies) before
// the fleet joins; without it the API server has its default flow control,
// as the goals ask.
var agentFleetFlowControl = flag.Bool("agent-fleet.strata-flowcontrol", false, "BenchmarkAgentFleet: apply Strata's FlowSchemas and PriorityLevelConfiguration (config/flowcontrol) first")

// apiServerProfile, when set, is where BenchmarkAgentFleet writes CPU
// profiles of the API server taken while the largest fleet is at rest and
// while it takes its new version: where the plane spends its time; and
// those of the hollow agents, with what they hold at rest.
var apiServerProfile = flag.String("agent-fleet.apiserver-cpuprofile", "", "BenchmarkAgentFleet: write the API server's CPU profiles of the largest fleet, at rest and during its change, to FILE-at-rest and FILE-change, the hollow agents' to FILE-at-rest-agents and FILE-change-agents, and their heap and goroutines at rest to FILE-agents-heap and FILE-agents-goroutine")

// BenchmarkAgentFleet grows a fleet of agent-mode clusters served by the
// hollow agents of `strata loadtest agents` — 10, then 100, then 1,000, or
// the sizes of -agent-fleet.sizes — under one manager, run as its own
// process so that its memory and CPU are its own. At each size, once the
// fleet is Ready and at rest, it reports over one heartbeat (30 s, or
// -agent-fleet.heartbeat) the agents' requests per second, the 429s, the
// API server's CPU per 1,000 agents and the manager's resident memory;
// then it publishes a new profile version every cluster follows and
// reports the seconds until every cluster reported it Ready and the
// manager's CPU seconds per cluster for the change. Last, the slope of the
// manager's memory per added cluster.
func BenchmarkAgentFleet(b *testing.B) {
	var sizes []int
	for _, s := range strings.Split(*agentFleetSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || (len(sizes) > 0 && n <= sizes[len(sizes)-1]) {
			b.Fatalf("-agent-fleet.sizes %q: want growing sizes, e.g. 10,100,1000", *agentFleetSizes)
		}
		sizes = append(sizes, n)
	}
	f := newHollowFleet(b)
	if *agentFleetFlowControl {
		must(b, flowcontrol.Apply(context.Background(), f.mgmt))
	}
	manager := startManagerProcess(b, testenv.Kubeconfig(b, f.mgmt))
	apiserver := apiServerOf(b, f.mgmt)
	// This process is the hollow agents (and the benchmark, which waits).
	hollow := &managerProcess{pid: os.Getpid()}
	ctx, stop := context.WithCancel(context.Background())
	b.Cleanup(stop)
	must(b, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	heartbeat := *agentFleetHeartbeat
	// One load test, grown to each size: one watch of its Clusters, as a
	// platform team's one run would keep.
	var run *loadtest.Run
	agentFigures := func() (requests, tooMany int64) {
		fig := run.Figures()
		return fig.Requests, fig.TooMany
	}
	// Each figure is logged as well as reported, so that a run that fails
	// at a larger size still shows those it had.
	report := func(v float64, unit string) {
		b.ReportMetric(v, unit)
		b.Logf("%s: %.4g", unit, v)
	}
	version, have := 0, 0
	rss := map[int]float64{}
	for _, n := range sizes {
		added, joining := n-have, time.Now()
		joinStrain := newStrain(b, f.mgmt, apiserver, hollow)
		var joined <-chan error
		if run == nil {
			var err error
			run, err = loadtest.Start(ctx, loadtest.Options{Management: f.mgmt, Namespace: "fleet", Clusters: added,
				Profile: "hello", Range: "1.x", Packs: f.packs, Heartbeat: heartbeat})
			must(b, err)
			joined = run.Joined()
		} else {
			joined = run.Grow(ctx, added)
		}
		must(b, <-joined)
		have = n
		waitLong(b, n, fmt.Sprintf("%d clusters Ready on 1.%d.0", n, version), loadtestOn(run, n, fmt.Sprintf("1.%d.0", version)), joinStrain.since)
		// Joined, registered and Ready: a new cluster's way in.
		report(float64(added)/time.Since(joining).Seconds(), fmt.Sprintf("joins-to-Ready/s@%d", n))

		// At rest, over one heartbeat.
		req0, tooMany0 := agentFigures()
		atRest0 := apiServerRequests(b, f.mgmt)
		cpu0, hollowAtRest0, at := apiserver.cpuSeconds(b), hollow.cpuSeconds(b), time.Now()
		largest := n == sizes[len(sizes)-1]
		if *apiServerProfile != "" && largest {
			go profileAPIServer(b, f.mgmt, *apiServerProfile+"-at-rest", min(20*time.Second, heartbeat))
			go profileHollowAgents(b, *apiServerProfile+"-at-rest-agents", min(20*time.Second, heartbeat))
		}
		restStrain := newStrain(b, f.mgmt, apiserver, hollow)
		<-time.After(heartbeat) // a measurement window, not a wait for a condition
		b.Logf("at rest at %d: %s", n, restStrain.since())
		req1, tooMany1 := agentFigures()
		window := time.Since(at).Seconds()
		rss[n] = manager.rssMiB(b)
		atRest1 := apiServerRequests(b, f.mgmt)
		logRequestsPerCluster(b, atRest0, atRest1, n, "over a heartbeat at rest")
		report(float64(req1-req0)/window, fmt.Sprintf("agent-req/s-at-rest@%d", n))
		report(float64(tooMany1-tooMany0), fmt.Sprintf("429s-at-rest@%d", n))
		// Heartbeats are Leases: at rest nothing writes a Cluster.
		report(float64(clusterWrites(atRest1)-clusterWrites(atRest0))/window, fmt.Sprintf("cluster-writes/s-at-rest@%d", n))
		apiserverAtRest := (apiserver.cpuSeconds(b) - cpu0) / window
		report(apiserverAtRest/float64(n)*1000, fmt.Sprintf("apiserver-cores/1000-agents-at-rest@%d", n))
		// The load test's own share of the machine at rest, which a real
		// fleet would not take from its plane.
		report((hollow.cpuSeconds(b)-hollowAtRest0)/window, fmt.Sprintf("hollow-agents-cores-at-rest@%d", n))
		report(rss[n], fmt.Sprintf("manager-rss-MiB@%d", n))
		// This process is the hollow agents (and a client of its own):
		// their live heap and goroutine stacks, per agent.
		runtime.GC()
		report(loadtest.MemoryMiB()/float64(n), fmt.Sprintf("hollow-agent-MiB@%d", n))
		if *apiServerProfile != "" && largest {
			// Between the windows: with thousands of agents, a goroutine
			// profile stops this process for seconds.
			for _, kind := range []string{"heap", "goroutine"} {
				if err := writeProfile(kind, *apiServerProfile+"-agents-"+kind); err != nil {
					b.Errorf("the hollow agents' %s profile: %v", kind, err)
				}
			}
		}

		version++
		cpu0 = manager.cpuSeconds(b)
		requests0 := apiServerRequests(b, f.mgmt)
		apiserverCPU0, hollowCPU0 := apiserver.cpuSeconds(b), hollow.cpuSeconds(b)
		strain := newStrain(b, f.mgmt, apiserver, hollow)
		if *apiServerProfile != "" && largest {
			go profileAPIServer(b, f.mgmt, *apiServerProfile+"-change", 20*time.Second)
			go profileHollowAgents(b, *apiServerProfile+"-change-agents", 20*time.Second)
		}
		published := time.Now()
		must(b, f.c.Create(ctx, helloProfile(fmt.Sprintf("1.%d.0", version), fmt.Sprint(1+version%2))))
		waitLong(b, n, fmt.Sprintf("%d clusters Ready on 1.%d.0", n, version), loadtestOn(run, n, fmt.Sprintf("1.%d.0", version)), strain.since)
		took := time.Since(published).Seconds()
		report(took, fmt.Sprintf("s-to-all-reporting@%d", n))
		apiserverCPU := apiserver.cpuSeconds(b) - apiserverCPU0
		report(apiserverCPU/took, fmt.Sprintf("apiserver-cores-during-change@%d", n))
		// What the change cost the API server beyond what the fleet costs
		// it at rest meanwhile: a figure of the plane that holds on any
		// machine, whatever else shares its cores here.
		report((apiserverCPU-apiserverAtRest*took)/float64(n)*1000, fmt.Sprintf("apiserver-cpu-ms/cluster/change@%d", n))
		report((hollow.cpuSeconds(b)-hollowCPU0)/took, fmt.Sprintf("hollow-agents-cores-during-change@%d", n))
		report((manager.cpuSeconds(b)-cpu0)/took, fmt.Sprintf("manager-cores-during-change@%d", n))
		requests1 := apiServerRequests(b, f.mgmt)
		report(float64(clusterWrites(requests1)-clusterWrites(requests0))/float64(n), fmt.Sprintf("cluster-writes/cluster/change@%d", n))
		logRequestsPerCluster(b, requests0, requests1, n, "a new version")
		report((manager.cpuSeconds(b)-cpu0)/float64(n), fmt.Sprintf("manager-cpu-s/cluster/change@%d", n))
		_, tooMany := agentFigures()
		report(float64(tooMany), fmt.Sprintf("429s-so-far@%d", n))
	}
	first, last := sizes[0], sizes[len(sizes)-1]
	if last > first {
		report((rss[last]-rss[first])/float64(last-first), "manager-MiB/added-cluster")
	}
}

// loadtestOn says whether the n clusters of the load test report Ready on
// that version of hello, as the load test's watch of them shows: a list of
// thousands of Clusters every second would load the API server the
// benchmark measures.
func loadtestOn(run *loadtest.Run, n int, version string) func() (bool, string) {
	return func() (bool, string) {
		done := run.ReadyOn(version)
		why := fmt.Sprintf("%d of %d clusters Ready on %s", done, n, version)
		if stops := run.Stops(); stops != "" {
			why += "; " + stops
		}
		return done == n, why
	}
}

// apiServerOf finds the kube-apiserver process serving cfg, by the port in
// its command line.
func apiServerOf(tb testing.TB, cfg *rest.Config) *managerProcess {
	tb.Helper()
	u, err := url.Parse(cfg.Host)
	must(tb, err)
	dirs, err := os.ReadDir("/proc")
	must(tb, err)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.HasSuffix(args[0], "kube-apiserver") && slices.Contains(args, "--secure-port="+u.Port()) {
			return &managerProcess{pid: pid}
		}
	}
	tb.Fatalf("no kube-apiserver process serving %s", cfg.Host)
	return nil
}

// clusterWrites is how many writes (creates, updates, patches, applies,
// of objects and of their status) the API server had served on Clusters
// when it counted requests; writes it refused (429) are not counted.
func clusterWrites(requests map[requestKind]float64) int64 {
	var n float64
	for key, count := range requests {
		if key.resource == "clusters" && key.code != "429" && slices.Contains([]string{"POST", "PUT", "PATCH", "APPLY"}, key.verb) {
			n += count
		}
	}
	return int64(n)
}

// requestKind is what the API server counts requests by.
type requestKind struct{ verb, resource, subresource, code string }

func (k requestKind) String() string {
	if k.subresource != "" {
		return fmt.Sprintf("%s %s/%s %s", k.verb, k.resource, k.subresource, k.code)
	}
	return fmt.Sprintf("%s %s %s", k.verb, k.resource, k.code)
}

// apiServerRequests are the requests the API server has answered so far,
// by kind, from its request counter, and the watches it closed because
// their clients did not keep up (verb "CLOSED", as each is reopened).
func apiServerRequests(tb testing.TB, cfg *rest.Config) map[requestKind]float64 {
	tb.Helper()
	counts := map[requestKind]float64{}
	families := apiServerMetrics(tb, cfg)
	labelsOf := func(m *dto.Metric) map[string]string {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		return labels
	}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		labels := labelsOf(m)
		counts[requestKind{labels["verb"], labels["resource"], labels["subresource"], labels["code"]}] += m.GetCounter().GetValue()
	}
	for _, m := range families["apiserver_terminated_watchers_total"].GetMetric() {
		counts[requestKind{verb: "CLOSED", resource: labelsOf(m)["resource"], code: "unresponsive"}] += m.GetCounter().GetValue()
	}
	return counts
}

// logRequestsPerCluster logs the kinds of request the API server answered
// between two of its counts, per cluster, most first: what a change costs
// the plane.
func logRequestsPerCluster(tb testing.TB, before, after map[requestKind]float64, n int, what string) {
	tb.Helper()
	type row struct {
		kind requestKind
		per  float64
	}
	var rows []row
	for kind, count := range after {
		if d := count - before[kind]; d > 0 {
			rows = append(rows, row{kind, d / float64(n)})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.per, a.per) })
	var lines []string
	for _, r := range rows[:min(len(rows), 12)] {
		lines = append(lines, fmt.Sprintf("  %8.2f  %s", r.per, r.kind))
	}
	tb.Logf("requests per cluster, %s at %d:\n%s", what, n, strings.Join(lines, "\n"))
}

// apiServerMetrics reads the API server's /metrics.
func apiServerMetrics(tb testing.TB, cfg *rest.Config) map[string]*dto.MetricFamily {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	must(tb, err)
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	must(tb, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	must(tb, err)
	return families
}

// profileAPIServer writes a CPU profile of the API server (its
// /debug/pprof, on by default) of the length given to file. Profiles at
// rest are no longer than the window, so that the change's can begin.
func profileAPIServer(tb testing.TB, cfg *rest.Config, file string, length time.Duration) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Error(err)
		return
	}
	raw, err := cs.RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(int(length/time.Second))).Timeout(time.Minute).DoRaw(context.Background())
	if err == nil {
		err = os.WriteFile(file, raw, 0o644)
	}
	if err != nil {
		tb.Errorf("the API server's CPU profile: %v", err)
	}
}

// profileHollowAgents writes a CPU profile of this process, the hollow
// agents', of the length given, to file.
func profileHollowAgents(tb testing.TB, file string, length time.Duration) {
	f, err := os.Create(file)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		tb.Errorf("the hollow agents' CPU profile: %v", err)
		return
	}
	time.Sleep(length) // the profile's length, not a wait for a condition
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		tb.Errorf("the hollow agents' CPU profile: %v", err)
	}
}

// writeProfile writes this process's profile of that kind (heap,
// goroutine) to file.
func writeProfile(kind, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(kind).WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// waitLong waits on a condition about n clusters, checked every second
// (they are all listed at each check), for up to ten minutes and two more
// per thousand clusters above five thousand.
//
// Each log line ends with what progress says, when given: what held it.
func waitLong(tb testing.TB, n int, what string, cond func() (bool, string), progress ...func() string) {
	tb.Helper()
	var last string
	limit := 10*time.Minute + time.Duration(max(n-5000, 0))*120*time.Millisecond
	start, logged := time.Now(), time.Now()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, limit, true, func(context.Context) (bool, error) {
		ok, why := cond()
		last = why
		// How a wait went (a steady pace, or a tail) says what held it.
		if time.Since(logged) >= 10*time.Second {
			line := why
			for _, p := range progress {
				line += "; " + p()
			}
			tb.Logf("%3.0f s: %s", time.Since(start).Seconds(), line)
			logged = time.Now()
		}
		return ok, nil
	})
	if err != nil {
		tb.Fatalf("waiting for %s: %v; last: %s", what, err, last)
	}
}

// strain tells, between two of its lines, what a wait's progress met on the
// machine and on the plane: the cores the API server and the hollow agents
// took, and the share of the hollow agents' CPU their garbage collector
// took; the memory the machine had left (when it runs short, the kernel
// drops etcd's and the binaries' pages and everything slows) and the API
// server's and the hollow agents' resident memory; the API server's 429s,
// the watches it closed on clients that did not keep up, and the lists and
// reads of Clusters it served (an agent's controllers list their caches
// and read its Cluster each time they start).
type strain struct {
	tb                 testing.TB
	cfg                *rest.Config
	apiserver, hollow  *managerProcess
	at                 time.Time
	requests           map[requestKind]float64
	apiserverCPU       float64
	hollowCPU, gc, all float64
}

func newStrain(tb testing.TB, cfg *rest.Config, apiserver, hollow *managerProcess) *strain {
	s := &strain{tb: tb, cfg: cfg, apiserver: apiserver, hollow: hollow}
	s.since()
	return s
}

// since is the strain line since it was last called.
func (s *strain) since() string {
	requests := apiServerRequests(s.tb, s.cfg)
	apiserverCPU, hollowCPU := s.apiserver.cpuSeconds(s.tb), s.hollow.cpuSeconds(s.tb)
	// The runtime's own estimates, which it updates at each collection.
	cpu := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(cpu)
	gc, all := cpu[0].Value.Float64(), cpu[1].Value.Float64()
	counts := map[string]float64{}
	for kind, n := range requests {
		d := n - s.requests[kind]
		switch {
		case kind.code == "429":
			counts["429s"] += d
		case kind.verb == "CLOSED":
			counts["closed"] += d
		case kind.verb == "LIST":
			counts["lists"] += d
		case kind.verb == "GET" && kind.resource == "clusters":
			counts["reads"] += d
		case kind.verb == "PUT" && kind.resource == "configmaps":
			counts["reports"] += d // agents' reports written
		case kind.verb == "PUT" && kind.subresource == "status" && kind.resource == "clusters":
			counts["shown"] += d // reports the manager showed on Clusters
		}
	}
	window := time.Since(s.at).Seconds()
	gcShare := 0.0
	if all > s.all {
		gcShare = (gc - s.gc) / (all - s.all)
	}
	line := fmt.Sprintf("cores: API server %.2f, hollow agents %.2f (GC %.0f%%); memory left %.1f GiB, API server %.1f GiB, hollow agents %.1f GiB; 429s +%.0f, reports +%.0f, shown +%.0f, watches closed +%.0f, lists +%.0f, Cluster reads +%.0f",
		(apiserverCPU-s.apiserverCPU)/window, (hollowCPU-s.hollowCPU)/window, 100*gcShare,
		memAvailableMiB(s.tb)/1024, s.apiserver.rssMiB(s.tb)/1024, s.hollow.rssMiB(s.tb)/1024,
		counts["429s"], counts["reports"], counts["shown"], counts["closed"], counts["lists"], counts["reads"])
	s.at, s.requests, s.apiserverCPU, s.hollowCPU, s.gc, s.all = time.Now(), requests, apiserverCPU, hollowCPU, gc, all
	return line
}

// memAvailableMiB is the memory the machine has left for new work without
// dropping pages in use.
func memAvailableMiB(tb testing.TB) float64 {
	return procKiB(tb, "/proc/meminfo", "MemAvailable:") / 1024
}

// procKiB reads a figure in kB from a /proc file of "Field:  N kB" lines.
func procKiB(tb testing.TB, file, field string) float64 {
	tb.Helper()
	data, err := os.ReadFile(file)
	must(tb, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			must(tb, err)
			return kb
		}
	}
	tb.Fatalf("no %s in %s", field, file)
	return 0
}

// managerProcess is a process of the benchmark's: `strata manager`, the
// API server, or this one (the hollow agents).
type managerProcess struct{ pid int }

// startManagerProcess builds the strata binary and runs its manager on the
// management plane of kubeconfig until the benchmark ends.
func startManagerProcess(tb testing.TB, kubeconfig string) *managerProcess {
	tb.Helper()
	dir := tb.TempDir()
	bin := filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/strata")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	must(tb, err)
	args := []string{"manager", "--kubeconfig", kubeconfig, "--metrics-addr", "0", "--health-addr", "0", "--leader-elect=false"}
	for _, d := range packDirs {
		args = append(args, "--packs", d)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	must(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		_ = logFile.Close()
		if tb.Failed() {
			data, _ := os.ReadFile(logFile.Name())
			if len(data) > 3000 {
				data = data[len(data)-3000:]
			}
			tb.Logf("--- manager log (tail) ---\n%s", data)
		}
	})
	return &managerProcess{pid: cmd.Process.Pid}
}

// rssMiB is the process's resident memory now.
func (m *managerProcess) rssMiB(tb testing.TB) float64 {
	return procKiB(tb, fmt.Sprintf("/proc/%d/status", m.pid), "VmRSS:") / 1024
}

// cpuSeconds is the process's user and system CPU time so far.
func (m *managerProcess) cpuSeconds(tb testing.TB) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.pid))
	must(tb, err)
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err := strconv.ParseFloat(fields[11], 64)
	must(tb, err)
	stime, err := strconv.ParseFloat(fields[12], 64)
	must(tb, err)
	// Clock ticks: 100 per second on Linux.
	return (utime + stime) / 100
}

// BenchmarkFleetWithADraft measures what a draft's impact costs the rest
// of the fleet: a new version's time to reach every cluster of a hollow
// fleet (STRATA_BENCH_CLUSTERS, 300 by default) without, then with, a
// draft that every cluster would move to — so that the manager computes
// its impact on all of them while they move — and how long that impact
// took to cover the fleet.
func BenchmarkFleetWithADraft(b *testing.B) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("STRATA_BENCH_CLUSTERS")); err == nil && v > 0 {
		n = v
	}
	f := newHollowFleet(b)
	startManagerProcess(b, testenv.Kubeconfig(b, f.mgmt))
	ctx := context.Background()
	must(b, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	f.grow(b, n, 30*time.Second)
	waitLong(b, n, "all on 1.0.0", f.allOn(b, "1.0.0"))
	move := func(version, replicas string) time.Duration {
		published := time.Now()
		must(b, f.c.Create(ctx, helloProfile(version, replicas)))
		waitLong(b, n, "all on "+version, f.allOn(b, version))
		return time.Since(published)
	}
	baseline := move("1.1.0", "2")

	draft := helloProfile("1.9.0", "3")
	draft.Spec.Draft = true
	created := time.Now()
	must(b, f.c.Create(ctx, draft))
	withDraft := move("1.2.0", "1")
	waitLong(b, n, "the draft's impact on every cluster", func() (bool, string) {
		got := &v1.ClusterProfile{}
		must(b, f.c.Get(ctx, client.ObjectKeyFromObject(draft), got))
		im := got.Status.Impact
		if im == nil {
			return false, "none yet"
		}
		s := im.Summary
		return int(s.Change+s.Unchanged+s.Refused) == n, fmt.Sprintf("%+v", s)
	})
	b.ReportMetric(baseline.Seconds(), "s-to-all@no-draft")
	b.ReportMetric(withDraft.Seconds(), "s-to-all@draft")
	b.ReportMetric(withDraft.Seconds()/baseline.Seconds(), "ratio")
	b.ReportMetric(time.Since(created).Seconds(), "s-impact-covers-fleet")
}
