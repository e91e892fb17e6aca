package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/testenv"
)

// fleetProfile is version 1.<rev>.0 of a 10-layer add-on profile: three
// real packs (hello-universe, spegel, argo-rollouts with its CRDs) and
// seven small apps (ConfigMap, Service, Deployment). rev reaches
// hello-universe's replicas and the first app's ConfigMap, so each new
// version upgrades two layers and leaves eight to be checked for drift.
func fleetProfile(rev int) *v1.ClusterProfile {
	version := fmt.Sprintf("1.%d.0", rev)
	p := &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet-" + version, Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{Name: "fleet", Version: version, Type: v1.ProfileAddOn, Layers: []v1.Layer{
			{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"},
				Values: fmt.Sprintf("manifests:\n  hello-universe:\n    replicas: %d\n", 1+rev%2)},
			{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.30"}},
			{Name: "argo-rollouts", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "argo-rollouts", Version: "1.2.1"}},
		}},
	}
	for i := range 7 {
		name := fmt.Sprintf("app-%d", i)
		data := "{}"
		if i == 0 {
			data = fmt.Sprintf("{revision: %q}", fmt.Sprint(rev))
		}
		p.Spec.Layers = append(p.Spec.Layers, inlineLayer(name, name, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: %[1]s}
data: %[2]s
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.k8s.io/pause:3.10}]}
`, name, data)))
	}
	return p
}

// BenchmarkFleetProfileChange publishes a new version of a 10-layer profile
// that every cluster follows, and measures the time until all clusters run
// it and are Ready, with 1 cluster (the baseline), 10 and 20. It reports the
// manager process's CPU seconds per change and peak RSS, and the API
// requests a no-op resync makes per cluster — on the workload clusters and
// on the management plane (writes there must be zero too). Last, with the
// manager stopped, the same kind of change made by one `strata deploy`
// process per cluster, all side by side: the floor this machine sets.
func BenchmarkFleetProfileChange(b *testing.B) {
	for _, n := range []int{1, 10, 20} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) { benchFleet(b, n) })
	}
}

func benchFleet(b *testing.B, n int) {
	if os.Getenv("CHANGE_HEAPPROFILE") != "" {
		// Sampled finely enough to tell what each cluster holds.
		runtime.MemProfileRate = 16 << 10
	}
	mgmt, c := emptyManagementPlane(b, controller.SharedNamespace, "fleet")
	// The manager's own writes to the management plane, counted apart from
	// the benchmark's.
	var mgmtWrites atomic.Int64
	managerCfg := rest.CopyConfig(mgmt)
	managerCfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if engine.RequestKind(req) == "write" {
				mgmtWrites.Add(1)
			}
			return next.RoundTrip(req)
		})
	})
	stop := startManager(b, managerCfg, 0)
	ctx := context.Background()
	must(b, c.Create(ctx, fleetProfile(0)))
	var clusters []*v1.Cluster
	kubeconfigs := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("site-%02d", i)
		cp := testenv.WorkloadCluster(b, testenv.ClusterOptions{Name: name, Nodes: 1})
		kubeconfigs[name] = cp.KubeconfigPath()
		clusters = append(clusters, importCluster(b, c, "fleet", name, cp.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "fleet", Version: "1.x"}))
	}
	// One list per look: the benchmark's own reads are counted in the
	// process's CPU with the manager's.
	allOn := func(version string) func() (bool, string) {
		return func() (bool, string) {
			var list v1.ClusterList
			must(b, c.List(ctx, &list, client.InNamespace("fleet")))
			done := 0
			for _, got := range list.Items {
				if got.Status.Phase == v1.ClusterReady && len(got.Status.Profiles) == 1 && got.Status.Profiles[0].Version == version {
					done++
				}
			}
			return done == n, fmt.Sprintf("%d of %d clusters Ready on %s", done, n, version)
		}
	}
	waitUntil(b, "every cluster Ready on 1.0.0", 20*time.Minute, allOn("1.0.0"))

	// CHANGE_CPUPROFILE profiles the changes alone, without the clusters'
	// first roll-out; CHANGE_HEAPPROFILE writes heap and goroutine
	// profiles before (FILE.N.before, FILE.N.before.goroutine, for N
	// clusters) and after them, for pprof -base. The heap is collected
	// first, so the profile shows what is held, not what the last
	// collection found.
	profile := func(file string) {
		if file == "" {
			return
		}
		// Twice: what sync.Pools hold goes only at the second.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
		b.Logf("%s: heap in use %.1f MiB (idle %.1f, released %.1f), stacks %.1f MiB, runtime %.1f MiB, %d goroutines", file,
			mib(ms.HeapInuse), mib(ms.HeapIdle), mib(ms.HeapReleased), mib(ms.StackInuse), mib(ms.MSpanInuse+ms.MCacheInuse+ms.BuckHashSys+ms.GCSys+ms.OtherSys), runtime.NumGoroutine())
		for name, f := range map[string]string{"heap": file, "goroutine": file + ".goroutine"} {
			pf, err := os.Create(f)
			must(b, err)
			must(b, pprof.Lookup(name).WriteTo(pf, 0))
			must(b, pf.Close())
		}
	}
	changeProfile := os.Getenv("CHANGE_HEAPPROFILE")
	if changeProfile != "" {
		changeProfile = fmt.Sprintf("%s.%d", changeProfile, n)
		profile(changeProfile + ".before")
	}
	// The change's own peak: from what the manager holds once the first
	// roll-out's garbage is collected and returned to the system, as in a
	// manager that has run a while.
	firstPeak := peakRSSMiB()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(b)
	rss0 := residentMiB(b)
	if f := os.Getenv("CHANGE_CPUPROFILE"); f != "" {
		pf, err := os.Create(f)
		must(b, err)
		must(b, pprof.StartCPUProfile(pf))
		defer pf.Close()
	}
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		must(b, c.Create(ctx, fleetProfile(i)))
		waitUntil(b, "every cluster Ready on the new version", 20*time.Minute, allOn(fmt.Sprintf("1.%d.0", i)))
	}
	b.StopTimer()
	pprof.StopCPUProfile()
	profile(changeProfile)
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/change")
	b.ReportMetric(rss0, "rss-before-change-MiB")
	b.ReportMetric(peakResidentMiB(b), "peak-rss-in-change-MiB")

	// A no-op resync of every cluster, once the manager is idle: the
	// annotation wakes each once.
	waitUntil(b, "the manager idle", time.Minute, func() (bool, string) {
		busy := gather(b, "controller_runtime_active_workers", "controller", "cluster")
		queued := gather(b, "workqueue_depth", "name", "cluster")
		return sum(busy) == 0 && sum(queued) == 0, fmt.Sprintf("busy %v queued %v", busy, queued)
	})
	reads0, dry0, writes0 := workloadRequests(b)
	reconciles0 := clusterReconciles(b)
	mgmtWrites0 := mgmtWrites.Load()
	for _, cl := range clusters {
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"bench.strata.dev/resync":"`+time.Now().Format(time.RFC3339Nano)+`"}}}`))
		must(b, c.Patch(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cl.Name, Namespace: cl.Namespace}}, patch))
	}
	waitUntil(b, "a resync of every cluster", 10*time.Minute, func() (bool, string) {
		done := clusterReconciles(b) - reconciles0
		return done >= float64(n), fmt.Sprintf("%v of %d reconciled", done, n)
	})
	reads, dry, writes := workloadRequests(b)
	per := float64(n)
	b.ReportMetric((reads-reads0)/per, "noop-reads/cluster")
	b.ReportMetric((dry-dry0)/per, "noop-dryruns/cluster")
	b.ReportMetric((writes-writes0)/per, "noop-writes/cluster")
	b.ReportMetric(float64(mgmtWrites.Load()-mgmtWrites0)/per, "noop-mgmt-writes/cluster")
	b.ReportMetric(max(firstPeak, peakRSSMiB()), "peak-rss-MiB")
	// HEAPDUMP: what the manager holds once idle.
	if f := os.Getenv("HEAPDUMP"); f != "" {
		profile(f)
	}

	stop()
	b.ReportMetric(parallelDeploys(b, kubeconfigs, fleetProfile(b.N+1)).Seconds(), "s/change-by-parallel-deploys")
}

// parallelDeploys moves every cluster to profile p with one `strata
// deploy` process each, all at once, and says how long the slowest took.
func parallelDeploys(b *testing.B, kubeconfigs map[string]string, p *v1.ClusterProfile) time.Duration {
	dir := b.TempDir()
	bin := filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/strata").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	p.TypeMeta = metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "ClusterProfile"}
	profileFile := filepath.Join(dir, "profile.yaml")
	data, err := yaml.Marshal(p)
	must(b, err)
	must(b, os.WriteFile(profileFile, data, 0o600))
	var cmds []*exec.Cmd
	for name, kubeconfig := range kubeconfigs {
		cl := v1.Cluster{TypeMeta: metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "Cluster"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"},
			Spec: v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: p.Spec.Name, Version: p.Spec.Version}}}}
		data, err := yaml.Marshal(cl)
		must(b, err)
		clusterFile := filepath.Join(dir, name+".yaml")
		must(b, os.WriteFile(clusterFile, data, 0o600))
		cmds = append(cmds, exec.Command(bin, "deploy", "--kubeconfig", kubeconfig, "-f", profileFile, "--cluster", clusterFile,
			"--packs", "../../../shared/testdata/pack-central", "--packs", "../../packs", "--timeout", "10m"))
	}
	started := time.Now()
	errs := make(chan error, len(cmds))
	for _, cmd := range cmds {
		go func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
				return
			}
			errs <- nil
		}()
	}
	for range cmds {
		must(b, <-errs)
	}
	return time.Since(started)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSMiB is this process's peak resident set: the manager and the
// benchmark's own client (the clusters are other processes).
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}

// resetPeakRSS starts this process's peak resident set afresh from its
// current one (Linux: clear_refs 5).
func resetPeakRSS(tb testing.TB) {
	must(tb, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
}

// residentMiB and peakResidentMiB read VmRSS and VmHWM, the peak since
// the last resetPeakRSS.
func residentMiB(tb testing.TB) float64     { return procStatusMiB(tb, "VmRSS:") }
func peakResidentMiB(tb testing.TB) float64 { return procStatusMiB(tb, "VmHWM:") }

func procStatusMiB(tb testing.TB, field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	must(tb, err)
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			must(tb, err)
			return kb / 1024
		}
	}
	tb.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// workloadRequests reads strata_workload_requests_total as a scrape would.
func workloadRequests(tb testing.TB) (reads, dryRuns, writes float64) {
	byKind := gather(tb, "strata_workload_requests_total", "kind", "")
	return byKind["read"], byKind["dry-run"], byKind["write"]
}

func clusterReconciles(tb testing.TB) float64 {
	return sum(gather(tb, "controller_runtime_reconcile_total", "controller", "cluster"))
}

func sum(m map[string]float64) float64 {
	total := 0.0
	for _, v := range m {
		total += v
	}
	return total
}

// gather sums a counter or gauge from the metrics registry by the value of
// one label, keeping only series whose label equals only when it is set.
func gather(tb testing.TB, name, label, only string) map[string]float64 {
	families, err := metrics.Registry.Gather()
	must(tb, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					key = l.GetValue()
				}
			}
			if only != "" && key != only {
				continue
			}
			if only != "" {
				// Summed across results (success, error, requeue).
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" {
						key = l.GetValue()
					}
				}
			}
			out[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}
