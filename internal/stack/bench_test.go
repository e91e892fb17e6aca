package stack_test

import (
	"fmt"
	"strings"
	"testing"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/stack"
)

// addonPacks are real add-on packs a synthetic profile cycles through.
var addonPacks = [][2]string{
	{"hello-universe", "1.2.0"}, {"spegel", "0.0.30"}, {"kubevious", "1.0.10"},
	{"argo-rollouts", "1.2.1"}, {"tekton-operator", "0.61.0"}, {"akuity-agent", "0.30.0-5.5.2026"},
}

// wideCluster is an infra profile plus an add-on profile of n-4 layers, each
// with values that use a variable and a system macro.
func wideCluster(n int) []string {
	var b strings.Builder
	b.WriteString("apiVersion: strata.dev/v1alpha1\nkind: ClusterProfile\nmetadata: {name: wide-1.0.0}\nspec:\n  name: wide\n  version: 1.0.0\n  type: add-on\n")
	b.WriteString("  variables: [{name: team, default: platform}]\n  layers:\n")
	for i := 0; i < n-4; i++ {
		p := addonPacks[i%len(addonPacks)]
		fmt.Fprintf(&b, "    - name: layer-%d\n      kind: addon\n      pack: {name: %s, version: %s}\n", i, p[0], p[1])
		fmt.Fprintf(&b, "      values: |\n        extra:\n          team: {{.spectro.var.team}}\n          cluster: {{.spectro.system.cluster.name}}\n")
	}
	return []string{infra, b.String(), cluster("  profiles: [{name: infra, version: 1.0.0}, {name: wide, version: 1.0.0}]\n")}
}

func benchmarkResolve(b *testing.B, layers int) {
	d := read(b, "wide.yaml", strings.Join(wideCluster(layers), "\n---\n"))
	packs := realPacks(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, err := stack.ResolveStack(d.Profiles, d.Clusters[0], packs, stack.Facts{})
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Layers) != layers {
			b.Fatalf("%d layers, want %d", len(st.Layers), layers)
		}
	}
}

// BenchmarkResolveStack30Layers is the figure the issue asks for; the
// 5-layer run beside it is the baseline that shows how resolution scales.
func BenchmarkResolveStack30Layers(b *testing.B) { benchmarkResolve(b, 30) }
func BenchmarkResolveStack5Layers(b *testing.B)  { benchmarkResolve(b, 5) }

// BenchmarkLintAllPacks loads every real pack, charts and templates included.
func BenchmarkLintAllPacks(b *testing.B) {
	paths, err := pack.Discover("../../../shared/testdata/pack-central")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			if _, problems := pack.Load(p); problems.Err() != nil {
				b.Fatal(problems.Err())
			}
		}
	}
}
