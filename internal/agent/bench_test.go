package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/testenv"
)

// BenchmarkAgentFleet grows a fleet of agent-mode clusters served by
// hollow agents — 10, then 100, then 1,000 — under one manager, run as
// its own process so that its memory and CPU are its own. At each size it
// publishes a new profile version that every cluster follows and reports
// the manager's resident memory once idle, its CPU seconds per cluster for
// the change, and the seconds until every cluster reported the new version
// Ready; then the slope of memory per added cluster.
func BenchmarkAgentFleet(b *testing.B) {
	f := newHollowFleet(b)
	manager := startManagerProcess(b, testenv.Kubeconfig(b, f.mgmt))
	ctx := context.Background()
	must(b, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	version := 0
	rss := map[int]float64{}
	sizes := []int{10, 100, 1000}
	for _, n := range sizes {
		f.grow(b, n, 30*time.Second)
		waitLong(b, fmt.Sprintf("%d clusters Ready on 1.%d.0", n, version), f.allOn(b, fmt.Sprintf("1.%d.0", version)))
		rss[n] = manager.rssMiB(b)

		version++
		cpu0 := manager.cpuSeconds(b)
		published := time.Now()
		must(b, f.c.Create(ctx, helloProfile(fmt.Sprintf("1.%d.0", version), fmt.Sprint(1+version%2))))
		waitLong(b, fmt.Sprintf("%d clusters Ready on 1.%d.0", n, version), f.allOn(b, fmt.Sprintf("1.%d.0", version)))
		took := time.Since(published)
		b.ReportMetric(rss[n], fmt.Sprintf("manager-rss-MiB@%d", n))
		b.ReportMetric((manager.cpuSeconds(b)-cpu0)/float64(n), fmt.Sprintf("manager-cpu-s/cluster/change@%d", n))
		b.ReportMetric(took.Seconds(), fmt.Sprintf("s-to-all-reporting@%d", n))
	}
	first, last := sizes[0], sizes[len(sizes)-1]
	b.ReportMetric((rss[last]-rss[first])/float64(last-first), "manager-MiB/added-cluster")
}

// waitLong waits on a condition checked every second, for up to ten
// minutes: a thousand clusters are listed at each check.
func waitLong(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 10*time.Minute, true, func(context.Context) (bool, error) {
		ok, why := cond()
		last = why
		return ok, nil
	})
	if err != nil {
		tb.Fatalf("waiting for %s: %v; last: %s", what, err, last)
	}
}

// managerProcess is `strata manager` running as its own process.
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
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.pid))
	must(tb, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			must(tb, err)
			return kb / 1024
		}
	}
	tb.Fatalf("no VmRSS in /proc/%d/status", m.pid)
	return 0
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
	waitLong(b, "all on 1.0.0", f.allOn(b, "1.0.0"))
	move := func(version, replicas string) time.Duration {
		published := time.Now()
		must(b, f.c.Create(ctx, helloProfile(version, replicas)))
		waitLong(b, "all on "+version, f.allOn(b, version))
		return time.Since(published)
	}
	baseline := move("1.1.0", "2")

	draft := helloProfile("1.9.0", "3")
	draft.Spec.Draft = true
	created := time.Now()
	must(b, f.c.Create(ctx, draft))
	withDraft := move("1.2.0", "1")
	waitLong(b, "the draft's impact on every cluster", func() (bool, string) {
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
