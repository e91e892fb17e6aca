package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

// wideStack is a 20-layer cluster: the local infra profile and 16 add-ons
// cycling through real packs.
func wideStack(b *testing.B) (*profile.Documents, []string) {
	packs := [][2]string{{"hello-universe", "1.2.0"}, {"spegel", "0.0.30"}, {"kubevious", "1.0.10"}, {"argo-rollouts", "1.2.1"},
		{"tekton-operator", "0.61.0"}, {"akuity-agent", "0.30.0-5.5.2026"}, {"spegel", "0.0.18"}, {"kubewatch", "1.0.7"}}
	var y strings.Builder
	y.WriteString("apiVersion: strata.dev/v1alpha1\nkind: ClusterProfile\nmetadata: {name: wide-1.0.0}\nspec:\n  name: wide\n  version: 1.0.0\n  type: add-on\n  layers:\n")
	for i := 0; i < 16; i++ {
		p := packs[i%len(packs)]
		fmt.Fprintf(&y, "    - {name: layer-%d, kind: addon, pack: {name: %s, version: %s}}\n", i, p[0], p[1])
	}
	y.WriteString("---\napiVersion: strata.dev/v1alpha1\nkind: Cluster\nmetadata: {name: wide}\nspec:\n  provider: local\n  profiles: [{name: local-infra, version: 1.0.0, variables: [{name: nfsServer, value: 10.0.0.5}]}, {name: wide, version: 1.0.0}]\n")
	file := filepath.Join(b.TempDir(), "wide.yaml")
	if err := os.WriteFile(file, []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	docs, err := profile.ReadFiles("../../examples/infra-local.yaml", file)
	if err != nil {
		b.Fatal(err)
	}
	return docs, []string{packCentral, "../../packs"}
}

func resolveWide(b *testing.B, docs *profile.Documents, packs stack.Packs) {
	st, err := stack.ResolveStack(docs.Profiles, docs.Clusters[0], packs, stack.Facts{})
	if err != nil {
		b.Fatal(err)
	}
	if len(st.Layers) != 20 {
		b.Fatalf("%d layers, want 20", len(st.Layers))
	}
}

// BenchmarkResolve20Layers resolves a 20-layer stack as a fresh process
// would: from pack folders (the baseline), from a registry with an empty
// cache, and from a registry with the cache filled (tags are still asked).
func BenchmarkResolve20Layers(b *testing.B) {
	docs, dirs := wideStack(b)
	srv := testenv.StartRegistry(b, testenv.RegistryOptions{})
	ep, _ := ParseEndpoint(srv.Endpoint("bench"))
	reg, _ := New(ep, Options{PlainHTTP: true, Credentials: &Credentials{}})
	for _, dir := range dirs {
		paths, _ := pack.Discover(dir)
		for _, path := range paths {
			p, _ := pack.Load(path)
			if _, err := reg.Push(context.Background(), p, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("folders", func(b *testing.B) {
		for b.Loop() {
			c, err := pack.LoadCatalog(dirs...)
			if err != nil {
				b.Fatal(err)
			}
			resolveWide(b, docs, c)
		}
	})
	b.Run("registry-cold-cache", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			cache, err := OpenCache(b.TempDir(), 0)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			resolveWide(b, docs, &Catalog{Registries: []*Registry{reg}, Cache: cache})
		}
	})
	b.Run("registry-warm-cache", func(b *testing.B) {
		cache, err := OpenCache(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		resolveWide(b, docs, &Catalog{Registries: []*Registry{reg}, Cache: cache})
		b.ResetTimer()
		for b.Loop() {
			resolveWide(b, docs, &Catalog{Registries: []*Registry{reg}, Cache: cache})
		}
	})
}

// BenchmarkPushSharedPacks pushes the 13 shared packs to a new base path.
func BenchmarkPushSharedPacks(b *testing.B) {
	srv := testenv.StartRegistry(b, testenv.RegistryOptions{})
	paths, err := pack.Discover(packCentral)
	if err != nil {
		b.Fatal(err)
	}
	var packs []*pack.Pack
	for _, path := range paths {
		p, _ := pack.Load(path)
		packs = append(packs, p)
	}
	i := 0
	for b.Loop() {
		i++
		ep, _ := ParseEndpoint(srv.Endpoint(fmt.Sprintf("run%d", i)))
		reg, _ := New(ep, Options{PlainHTTP: true, Credentials: &Credentials{}})
		for _, p := range packs {
			if _, err := reg.Push(context.Background(), p, false); err != nil {
				b.Fatal(err)
			}
		}
	}
}
