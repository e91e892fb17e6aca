package stack_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/stack"
)

var fixtures = sync.OnceValues(func() (*pack.Catalog, error) {
	return pack.LoadCatalog("../pack/testdata/accepted", "../../../shared/testdata/pack-central", "../../packs")
})

// resolveWithFixtures resolves the one cluster among docs with the real
// packs and the pack package's fixtures of patterns Palette accepts.
func resolveWithFixtures(t *testing.T, docs ...string) (*stack.Stack, error) {
	t.Helper()
	c, err := fixtures()
	if err != nil {
		t.Fatal(err)
	}
	d := read(t, "fleet.yaml", strings.Join(docs, "\n---\n"))
	if len(d.Clusters) != 1 {
		t.Fatalf("want one cluster in the documents, got %d", len(d.Clusters))
	}
	return stack.ResolveStack(d.Profiles, d.Clusters[0], c, stack.Facts{})
}

func addons(layers string) string {
	return "apiVersion: strata.dev/v1alpha1\nkind: ClusterProfile\nmetadata: {name: apps-1.0.0}\nspec:\n  name: apps\n  version: 1.0.0\n  type: add-on\n  layers:\n" + layers
}

const withApps = "  profiles: [{name: infra, version: 1.0.0}, {name: apps, version: 1.0.0}]\n"

func mustResolve(t *testing.T, docs ...string) *stack.Stack {
	t.Helper()
	st, err := resolveWithFixtures(t, docs...)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	return st
}

func wantError(t *testing.T, want string, docs ...string) {
	t.Helper()
	_, err := resolveWithFixtures(t, docs...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func TestPackValuesMayReferToThemselves(t *testing.T) {
	st := mustResolve(t, infra, addons("    - {name: mirror, kind: addon, pack: {name: self-reference, version: 0.1.0}}\n"), cluster(withApps))
	if got := value(t, st, "mirror", "manifests.mirror.greeting"); got != "hello from mirror" {
		t.Errorf("greeting %q, want the chain of self-references expanded to \"hello from mirror\"", got)
	}
	if l, _ := st.Layer("mirror"); l.Namespace != "mirror" {
		t.Errorf("namespace %q, want mirror", l.Namespace)
	}
	// A profile value that changes the referred value is seen by the reference.
	st = mustResolve(t, infra, addons("    - name: mirror\n      kind: addon\n      pack: {name: self-reference, version: 0.1.0}\n      values: |\n        pack: {namespace: glass}\n"), cluster(withApps))
	if got := value(t, st, "mirror", "manifests.mirror.greeting"); got != "hello from glass" {
		t.Errorf("greeting %q, want \"hello from glass\"", got)
	}
	// Only a value that leads back to itself is a cycle.
	wantError(t, `of pack "self-reference" refers back to itself through {{.spectro.pack}} macros`, infra, addons("    - name: mirror\n      kind: addon\n      pack: {name: self-reference, version: 0.1.0}\n      values: |\n        manifests:\n          mirror:\n            a: \"{{.spectro.pack.self-reference.manifests.mirror.b}}\"\n            b: \"{{.spectro.pack.self-reference.manifests.mirror.a}}\"\n"), cluster(withApps))
}

func TestUpgradeDependencyMovesPacksTogether(t *testing.T) {
	agent := "    - {name: agent, kind: addon, pack: {name: fleet-agent, version: 2.0.0}}\n"
	wantError(t, "pack fleet-agent-2.0.0 is upgraded together with hello-universe: want hello-universe >= 1.2.0, the cluster has 1.1.1 (layer \"web\")",
		infra, addons(agent+"    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.1.1}}\n"), cluster(withApps))
	mustResolve(t, infra, addons(agent+"    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}}\n"), cluster(withApps))
	// Not a requirement: without the other pack there is nothing to move.
	mustResolve(t, infra, addons(agent), cluster(withApps))
}

func TestKernelLayerFollowsTheOSLayer(t *testing.T) {
	kernelInfra := strings.Replace(infra, "    - {name: kubernetes", "    - {name: kernel, kind: kernel, pack: {name: edge-kernel, version: 6.8.0}}\n    - {name: kubernetes", 1)
	st := mustResolve(t, kernelInfra, cluster("  profiles: [{name: infra, version: 1.0.0}]\n"))
	var order []string
	for _, l := range st.Layers {
		order = append(order, l.Name)
	}
	if strings.Join(order, ",") != "os,kernel,kubernetes,antrea,nfs" {
		t.Errorf("install order %v, want the kernel layer right after os", order)
	}
	misplaced := strings.Replace(infra, "    - {name: nfs", "    - {name: kernel, kind: kernel, pack: {name: edge-kernel, version: 6.8.0}}\n    - {name: nfs", 1)
	wantError(t, `spec.layers[3].kind: "kernel": want csi`, misplaced, cluster("  profiles: [{name: infra, version: 1.0.0}]\n"))
}

func TestResourceConstraintsAgainstNodePools(t *testing.T) {
	agent := addons("    - {name: agent, kind: addon, pack: {name: fleet-agent, version: 2.0.0}}\n")
	local := "  provider: local\n" + withApps
	// The default pool (one node of 32 CPUs, 256Gi, 100Gi) holds it.
	st := mustResolve(t, infra, agent, cluster(local))
	for _, w := range st.Warnings {
		if strings.Contains(w.Message, "not checked") {
			t.Errorf("local cluster: unexpected warning %v", w)
		}
	}
	// Two 1-CPU nodes offer 2000m together: enough. Memory 2 x 1Gi is not.
	wantError(t, `spec.nodePools[0]: pool "small" is too small for layer "agent": pack fleet-agent-2.0.0 needs 4096 MiB of memory, its nodes together offer 2048 MiB of memory`,
		infra, agent, cluster(local+"  nodePools: [{name: small, count: 2, cpu: \"1\", memory: 1Gi}]\n"))
	wantError(t, `pack fleet-agent-2.0.0 needs 20 GB of disk, each node has 10 GB of disk`,
		infra, agent, cluster(local+"  nodePools: [{name: big, count: 3}, {name: thin, count: 1, diskSize: 10G}]\n"))
	// An imported cluster's nodes are not known: a warning, never a refusal.
	st = mustResolve(t, infra, agent, cluster(withApps))
	found := false
	for _, w := range st.Warnings {
		found = found || strings.Contains(w.Error(), `layer "agent": pack fleet-agent-2.0.0 states minimum node resources (pack.json constraints.resources) that are not checked`)
	}
	if !found {
		t.Errorf("imported cluster: warnings %v, want one saying the resources are not checked", st.Warnings)
	}
}

// kubevious states its needs per component (requests times replicas).
func TestResourceConstraintComponentsReadTheValues(t *testing.T) {
	kv := addons("    - {name: kubevious, kind: addon, pack: {name: kubevious, version: 1.0.10}}\n")
	local := "  provider: local\n" + withApps
	mustResolve(t, infra, kv, cluster(local))
	wantError(t, `pool "tiny" is too small for layer "kubevious": pack kubevious-1.0.10 needs `, infra, kv, cluster(local+"  nodePools: [{name: tiny, count: 1, cpu: 10m}]\n"))
}

func TestPresetsNamespacesAndSchemaRulesOfPalettePacks(t *testing.T) {
	st := mustResolve(t, infra, addons(
		"    - {name: quiet, kind: addon, pack: {name: quiet-app, version: 0.3.1}, presets: [\"Volume:loud\"]}\n"+
			"    - {name: anywhere, kind: addon, pack: {name: no-namespace, version: 1.0.0}}\n"+
			"    - {name: form, kind: addon, pack: {name: form-app, version: 1.4.0}}\n"), cluster(withApps))
	if got := value(t, st, "quiet", "manifests.quiet-app.greeting"); got != "HELLO" {
		t.Errorf("quiet-app greeting %q, want the selected preset's HELLO", got)
	}
	if l, _ := st.Layer("anywhere"); l.Namespace != "default" || l.InstallPriority != 5 {
		t.Errorf("no-namespace layer: namespace %q priority %d, want default and 5", l.Namespace, l.InstallPriority)
	}
	if got := value(t, st, "anywhere", "manifests.no-namespace.cluster"); got != "c1" {
		t.Errorf("an unquoted macro in a pack's values.yaml: %q, want the cluster name c1", got)
	}
	// A list rule ($[]) checks every element and names the one that fails.
	wantError(t, `layer "form" value "manifests.form-app.peers[1]": "ten" does not match format "${ipv4}"; peer address; one per entry`,
		infra, addons("    - name: form\n      kind: addon\n      pack: {name: form-app, version: 1.4.0}\n      values: |\n        manifests: {form-app: {peers: [10.0.0.1, ten]}}\n"), cluster(withApps))
	// The rule with an unknown format still requires its value.
	wantError(t, `layer "form" value "manifests.form-app.greeting": required value is empty`,
		infra, addons("    - name: form\n      kind: addon\n      pack: {name: form-app, version: 1.4.0}\n      values: |\n        manifests: {form-app: {greeting: \"\"}}\n"), cluster(withApps))
}

// The manager and `strata profile validate` resolve clusters through the
// same rule: an imported cluster brings its own infrastructure, a local
// one needs exactly one infra or full profile.
func TestImportedClustersNeedNoInfraProfile(t *testing.T) {
	apps := addons("    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}}\n")
	mustResolve(t, apps, cluster("  kubeconfigSecretRef: {name: c1-kubeconfig}\n  profiles: [{name: apps, version: 1.0.0}]\n"))
	wantError(t, "spec.profiles: has 0 infra or full profiles []: want exactly one", apps, cluster("  provider: local\n  profiles: [{name: apps, version: 1.0.0}]\n"))
}

// A layer that names its pack's registry is not served from folders.
func TestPackNamingARegistryNeedsOne(t *testing.T) {
	wantError(t, `spec.layers[0].pack: pack hello-universe 1.2.0: registry "platform": no pack registry is given here`,
		infra, addons("    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0, registry: platform}}\n"), cluster(withApps))
}

// Values naming others twice, twenty deep, expand once per value: the
// answers are kept while the layer resolves (a fuzz input found the
// exponential expansion hanging the resolver).
func TestSelfReferencesExpandOncePerValue(t *testing.T) {
	var v strings.Builder
	const depth = 20
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&v, "          k%d: \"{{.spectro.pack.self-reference.manifests.mirror.k%d}}{{.spectro.pack.self-reference.manifests.mirror.k%d}}\"\n", i, i+1, i+1)
	}
	fmt.Fprintf(&v, "          k%d: x\n", depth)
	layer := "    - name: mirror\n      kind: addon\n      pack: {name: self-reference, version: 0.1.0}\n      values: |\n        manifests:\n          mirror:\n" + strings.ReplaceAll(v.String(), "          k", "            k")
	st := mustResolve(t, infra, addons(layer), cluster(withApps))
	if got := value(t, st, "mirror", "manifests.mirror.k0"); len(got.(string)) != 1<<depth {
		t.Errorf("k0 has %d characters, want %d", len(got.(string)), 1<<depth)
	}
}

// What a capi cluster needs is checked offline as well, each problem named
// by its field: the class, a worker class per pool, a k8s layer.
func TestCAPIClustersNeedAClassPoolClassesAndAKubernetesLayer(t *testing.T) {
	only := "  profiles: [{name: infra, version: 1.0.0}]\n"
	capi := "  provider: capi\n  capi: {classRef: {name: local}}\n" + only
	mustResolve(t, infra, cluster(capi+"  nodePools: [{name: workers, count: 2, class: default-worker}]\n"))
	wantError(t, `spec.nodePools[0].class: pool "workers" of a capi cluster needs a worker class of its ClusterClass`,
		infra, cluster(capi+"  nodePools: [{name: workers, count: 2}]\n"))
	wantError(t, "spec.capi.classRef.name: provider capi needs the ClusterClass", infra, cluster("  provider: capi\n"+only))
	noK8s := strings.Replace(infra, "kind: k8s", "kind: addon", 1)
	if noK8s == infra {
		t.Fatal("the infra profile of these tests has no k8s layer to take away")
	}
	wantError(t, "spec.profiles: provider capi needs an infra or full profile with a k8s layer", noK8s, cluster(capi))
}
