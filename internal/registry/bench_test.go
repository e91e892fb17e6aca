package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	reg := plainRegistry(b, srv, "bench")
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
	// As the manager resolves between two syncs of a PackRegistry: the
	// listing answers, the cache holds the content.
	b.Run("registry-warm-cache-synced", func(b *testing.B) {
		synced := plainRegistry(b, srv, "bench")
		cache, err := OpenCache(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := synced.List(context.Background(), cache); err != nil {
			b.Fatal(err)
		}
		resolveWide(b, docs, &Catalog{Registries: []*Registry{synced}, Cache: cache})
		b.ResetTimer()
		for b.Loop() {
			resolveWide(b, docs, &Catalog{Registries: []*Registry{synced}, Cache: cache})
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
		reg := plainRegistry(b, srv, fmt.Sprintf("run%d", i))
		for _, p := range packs {
			if _, err := reg.Push(context.Background(), p, false); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCatalogMemory220Versions measures what a catalog of 220 pack
// versions costs in memory: read from folders (every pack held in memory, as
// --packs does) against a registry (listed into entries, content on disk,
// only the packs a stack uses loaded). Figures: MiB of live heap after a
// 20-layer stack is resolved, and the baseline heap before.
func BenchmarkCatalogMemory220Versions(b *testing.B) {
	docs, _ := wideStack(b)
	root := b.TempDir()
	paths, err := pack.Discover(packCentral)
	if err != nil {
		b.Fatal(err)
	}
	paths = append(paths, "../../packs/ubuntu-24.04", "../../packs/kubernetes-1.37.2")
	// 15 real packs at their own version, and copies at 14 more versions each.
	var dirs []string
	for _, path := range paths {
		p, _ := pack.Load(path)
		dirs = append(dirs, path)
		for i := 1; len(dirs) < 220 && i <= 14; i++ {
			dir := filepath.Join(root, fmt.Sprintf("%s-%d", p.ID(), i))
			if err := os.CopyFS(dir, os.DirFS(path)); err != nil {
				b.Fatal(err)
			}
			meta, _ := os.ReadFile(filepath.Join(dir, pack.MetadataFile))
			bumped := strings.Replace(string(meta), `"version": "`+p.Version+`"`, fmt.Sprintf(`"version": "%s-build.%d"`, p.Version, i), 1)
			bumped = strings.Replace(bumped, `"version":"`+p.Version+`"`, fmt.Sprintf(`"version":"%s-build.%d"`, p.Version, i), 1)
			if err := os.WriteFile(filepath.Join(dir, pack.MetadataFile), []byte(bumped), 0o644); err != nil {
				b.Fatal(err)
			}
			dirs = append(dirs, dir)
		}
	}
	srv := testenv.StartRegistry(b, testenv.RegistryOptions{})
	reg := plainRegistry(b, srv, "mem")
	versions := 0
	for _, dir := range dirs {
		p, problems := pack.Load(dir)
		if problems.Err() != nil {
			continue
		}
		if _, err := reg.Push(context.Background(), p, false); err != nil {
			b.Fatal(err)
		}
		versions++
	}
	cache, err := OpenCache(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	entries, err := reg.List(context.Background(), cache) // fills the cache, as a first sync does
	if err != nil || len(entries) != versions {
		b.Fatalf("%d entries, %v; want %d", len(entries), err, versions)
	}
	heap := func() float64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / (1 << 20)
	}
	var folders, registry, base float64
	for b.Loop() {
		base = heap()
		c := &Catalog{Registries: []*Registry{reg}, Cache: cache}
		resolveWide(b, docs, c)
		kept := entries // what a PackRegistry's status holds
		registry = heap() - base
		runtime.KeepAlive(c)
		runtime.KeepAlive(kept)

		base = heap()
		folderCatalog, err := pack.LoadCatalog(append([]string{root}, packCentral, "../../packs")...)
		if err != nil {
			b.Fatal(err)
		}
		resolveWide(b, docs, folderCatalog)
		folders = heap() - base
		runtime.KeepAlive(folderCatalog)
	}
	b.ReportMetric(float64(versions), "versions")
	b.ReportMetric(folders, "MiB-folders")
	b.ReportMetric(registry, "MiB-registry")
}
