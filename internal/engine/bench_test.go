package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

// wideStack is n layers alternating hello-universe (manifests) and spegel
// (a chart), each in its own namespace.
func wideStack(tb testing.TB, n int) *stack.Stack {
	var lines []string
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			lines = append(lines, fmt.Sprintf("hello-%d addon hello-universe 1.2.0 manifests: {hello-universe: {namespace: hello-%d}}", i, i))
		} else {
			// Each spegel needs node ports of its own.
			lines = append(lines, fmt.Sprintf("mirror-%d addon spegel 0.0.30 {pack: {namespace: mirror-%d, namespaceLabels: {}}, charts: {spegel: {service: {registry: {nodePort: %d, hostPort: %d}}}}}", i, i, 30100+i, 31100+i))
		}
	}
	return profileStack(tb, "wide", "add-on", lines...)
}

func benchCluster(b *testing.B) (*controlplane.ControlPlane, func() *engine.Engine) {
	b.Helper()
	cp := testenv.WorkloadCluster(b, testenv.ClusterOptions{Nodes: 2})
	return cp, func() *engine.Engine {
		e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 3 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
}

func applyStack(b *testing.B, e *engine.Engine, st *stack.Stack) (*engine.Result, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	plan, err := e.Plan(ctx, st)
	if err != nil {
		b.Fatal(err)
	}
	res, err := e.Apply(ctx, plan)
	if err != nil {
		b.Fatal(err)
	}
	if res.Failed() {
		b.Fatalf("apply failed: %+v", res.Layers)
	}
	return res, time.Since(start)
}

// BenchmarkApply20Layers deploys a 20-layer stack onto a fresh cluster and
// measures objects applied per second (readiness waits included), then the
// no-op re-apply of the same stack: its time as a fraction of the first,
// and its API requests.
func BenchmarkApply20Layers(b *testing.B) {
	st := wideStack(b, 20)
	for b.Loop() {
		b.StopTimer()
		_, newEngine := benchCluster(b)
		e := newEngine()
		// A fresh cluster's controllers need seconds to start syncing; wait
		// for that with one layer, so the figure is about Strata.
		warm := wideStack(b, 2)
		applyStack(b, e, warm)
		applyStack(b, e, &stack.Stack{Cluster: warm.Cluster})
		b.StartTimer()

		res, first := applyStack(b, e, st)
		objects := 0
		for _, l := range res.Layers {
			objects += l.Objects
		}
		before := e.Requests()
		_, noop := applyStack(b, e, st)
		used := e.Requests().Sub(before)

		b.ReportMetric(float64(objects)/first.Seconds(), "objects/s")
		b.ReportMetric(first.Seconds(), "first-apply-s")
		b.ReportMetric(noop.Seconds(), "noop-apply-s")
		b.ReportMetric(noop.Seconds()/first.Seconds(), "noop/first")
		b.ReportMetric(float64(used.Reads), "noop-reads")
		b.ReportMetric(float64(used.Writes), "noop-writes")
		b.ReportMetric(float64(used.DryRuns), "noop-dryruns")
	}
}

// BenchmarkSingleChartStrataVsHelm installs the spegel chart with Strata
// (plan, apply, readiness) and with the Helm SDK alone (install with Helm's
// kstatus wait), alternately on one cluster; the ratio is Strata's overhead.
func BenchmarkSingleChartStrataVsHelm(b *testing.B) {
	cp, newEngine := benchCluster(b)
	st := profileStack(b, "one", "add-on", "mirror addon spegel 0.0.30 pack: {namespace: bench, namespaceLabels: {}}")
	empty := &stack.Stack{Cluster: st.Cluster}
	// Warm up: a fresh cluster's controllers take seconds to start syncing,
	// which would land on whichever installs first.
	applyStack(b, newEngine(), st)
	applyStack(b, newEngine(), empty)
	helmInstall(b, cp, st.Layers[0])
	var strata, helm time.Duration
	for b.Loop() {
		e := newEngine()
		_, d := applyStack(b, e, st)
		strata += d
		applyStack(b, e, empty) // uninstall again
		helm += helmInstall(b, cp, st.Layers[0])
	}
	b.ReportMetric(strata.Seconds()/float64(b.N), "strata-s")
	b.ReportMetric(helm.Seconds()/float64(b.N), "helm-s")
	b.ReportMetric(strata.Seconds()/helm.Seconds(), "strata/helm")
}

// helmInstall installs a layer's chart with the Helm SDK only and returns
// how long install and wait took; the uninstall after it is not counted.
func helmInstall(b *testing.B, cp *controlplane.ControlPlane, l stack.Layer) time.Duration {
	b.Helper()
	kubeconfig, ns := cp.KubeconfigPath(), "helm-bench"
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		b.Fatal(err)
	}
	values := l.Values["charts"].(map[string]any)["spegel"].(map[string]any)
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = "helm-mirror", ns, true
	in.ServerSideApply = true
	in.WaitStrategy, in.Timeout = kube.StatusWatcherStrategy, 3*time.Minute
	start := time.Now()
	if _, err := in.Run(l.Pack.Charts[0].Chart, values); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = kube.StatusWatcherStrategy, 3*time.Minute
	if _, err := un.Run("helm-mirror"); err != nil {
		b.Fatal(err)
	}
	return took
}
