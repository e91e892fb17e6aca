package stack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

var (
	catalogOnce sync.Once
	catalog     *pack.Catalog
	catalogErr  error
)

// realPacks is the community packs plus Strata's own, as users have them.
func realPacks(t testing.TB) *pack.Catalog {
	t.Helper()
	catalogOnce.Do(func() {
		catalog, catalogErr = pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	})
	if catalogErr != nil {
		t.Fatal(catalogErr)
	}
	return catalog
}

// read parses YAML documents written to a file named name.
func read(t testing.TB, name, text string) *profile.Documents {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := profile.ReadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

const infra = `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: infra-1.0.0}
spec:
  name: infra
  version: 1.0.0
  type: infra
  layers:
    - {name: os, kind: os, pack: {name: ubuntu, version: "24.04"}}
    - {name: kubernetes, kind: k8s, pack: {name: kubernetes, version: 1.37.2}}
    - {name: antrea, kind: cni, pack: {name: antrea, version: 1.9.0}}
    - {name: nfs, kind: csi, pack: {name: csi-nfs-subdir-external, version: 4.0.13}}
`

const hello = `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: hello-1.0.0}
spec:
  name: hello
  version: 1.0.0
  type: add-on
  variables:
    - {name: namespace, default: hello-universe, regex: "[a-z0-9-]+"}
    - {name: replicas, format: number, default: "1"}
  layers:
    - name: hello-universe
      kind: addon
      pack: {name: hello-universe, version: 1.2.0}
      values: |
        manifests:
          hello-universe:
            namespace: {{.spectro.var.namespace}}
            replicas: {{.spectro.var.replicas}}
`

func resolveCluster(t testing.TB, docs ...string) (*stack.Stack, error) {
	t.Helper()
	d := read(t, "fleet.yaml", strings.Join(docs, "\n---\n"))
	if len(d.Clusters) != 1 {
		t.Fatalf("want one cluster in the documents, got %d", len(d.Clusters))
	}
	return stack.ResolveStack(d.Profiles, d.Clusters[0], realPacks(t), stack.Facts{})
}

func cluster(body string) string {
	return "apiVersion: strata.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c1}\nspec:\n" + body
}

func value(t *testing.T, st *stack.Stack, layer, path string) any {
	t.Helper()
	l, ok := st.Layer(layer)
	if !ok {
		t.Fatalf("no layer %q in stack", layer)
	}
	v, ok := pack.Lookup(l.Values, path)
	if !ok {
		t.Fatalf("layer %q has no value %q", layer, path)
	}
	return v
}

func TestHelloUniverseVariablesDriveNamespaceAndReplicas(t *testing.T) {
	st, err := resolveCluster(t, infra, hello, cluster(`
  profiles:
    - {name: infra, version: 1.0.0}
    - name: hello
      version: 1.0.0
      variables: [{name: namespace, value: team-a}, {name: replicas, value: "3"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, st, "hello-universe", "manifests.hello-universe.namespace"); got != "team-a" {
		t.Errorf("namespace = %v, want team-a", got)
	}
	if l, _ := st.Layer("hello-universe"); l.Namespace != "team-a" {
		t.Errorf("layer namespace = %q, want team-a, where the manifest pack puts its objects", l.Namespace)
	}
	if l, _ := st.Layer("antrea"); l.Namespace != "kube-system" {
		t.Errorf("antrea namespace = %q, want kube-system from pack.namespace", l.Namespace)
	}
	if got := value(t, st, "hello-universe", "manifests.hello-universe.replicas"); got != 3.0 {
		t.Errorf("replicas = %#v, want the number 3", got)
	}
	// The pack's default preset (Backend:disable-api) stays on.
	if got := value(t, st, "hello-universe", "manifests.hello-universe.apiEnabled"); got != false {
		t.Errorf("apiEnabled = %v, want false from the default preset", got)
	}
}

func TestHelloUniverseEnableAPIPreset(t *testing.T) {
	withPreset := strings.Replace(hello, "      pack: {name: hello-universe, version: 1.2.0}",
		"      pack: {name: hello-universe, version: 1.2.0}\n      presets: [\"Backend:enable-api\"]", 1)
	st, err := resolveCluster(t, infra, withPreset, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 1.0.0}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, st, "hello-universe", "manifests.hello-universe.apiEnabled"); got != true {
		t.Errorf("apiEnabled = %v, want true from Backend:enable-api", got)
	}
	if got := value(t, st, "hello-universe", "manifests.hello-universe.images.hellouniverseapi"); got != "ghcr.io/spectrocloud/hello-universe-api:1.1.0" {
		t.Errorf("api image = %v", got)
	}
	// Profile values still win over the preset.
	if got := value(t, st, "hello-universe", "manifests.hello-universe.namespace"); got != "hello-universe" {
		t.Errorf("namespace = %v", got)
	}
}

const chains = `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: ci-1.0.0}
spec:
  name: ci
  version: 1.0.0
  type: add-on
  layers:
    - {name: tekton-chains, kind: addon, pack: {name: tekton-chains, version: 0.12.0}}
`

const operator = `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: pipelines-1.0.0}
spec:
  name: pipelines
  version: 1.0.0
  type: add-on
  layers:
    - {name: tekton-operator, kind: addon, pack: {name: tekton-operator, version: 0.61.0}}
`

func TestPackDependencyConstraintsSpanProfiles(t *testing.T) {
	_, err := resolveCluster(t, infra, chains, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: ci, version: 1.0.0}]\n"))
	if err == nil || !strings.Contains(err.Error(), `cluster "c1": layer "tekton-chains": pack tekton-chains-0.12.0 requires pack tekton-operator >= 0.61.0, and no layer of the cluster uses it`) {
		t.Fatalf("error = %v, want the tekton-operator dependency named", err)
	}
	// The operator in another add-on profile of the same cluster satisfies it.
	if _, err := resolveCluster(t, infra, chains, operator, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: ci, version: 1.0.0}, {name: pipelines, version: 1.0.0}]\n")); err != nil {
		t.Fatalf("with tekton-operator: %v", err)
	}
}

func TestOptionalConstraintAgainstTheKubernetesLayer(t *testing.T) {
	perm := strings.NewReplacer("ci", "perm", "tekton-chains", "permission-manager", "0.12.0", "1.0.0").Replace(chains)
	_, err := resolveCluster(t, infra, perm, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: perm, version: 1.0.0}]\n"))
	if err == nil || !strings.Contains(err.Error(), "pack permission-manager-1.0.0 needs kubernetes <= 1.21.49, the cluster has 1.37.2") {
		t.Fatalf("error = %v, want the kubernetes version constraint", err)
	}
}

func TestInstallOrder(t *testing.T) {
	ordered := `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: apps-1.0.0}
spec:
  name: apps
  version: 1.0.0
  type: add-on
  layers:
    - {name: late, kind: addon, pack: {name: spegel, version: 0.0.30}, installPriority: 10}
    - {name: needs-late, kind: addon, pack: {name: hello-universe, version: 1.1.1}, dependsOn: [late]}
    - {name: early, kind: addon, pack: {name: spegel, version: 0.0.18}, installPriority: -5}
`
	// The add-on profile is listed first; infrastructure still installs first.
	st, err := resolveCluster(t, ordered, infra, cluster("  profiles: [{name: apps, version: 1.0.0}, {name: infra, version: 1.0.0}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range st.Layers {
		names = append(names, l.Name)
	}
	want := "os,kubernetes,antrea,nfs,early,late,needs-late"
	if strings.Join(names, ",") != want {
		t.Errorf("order = %v, want %s", names, want)
	}
}

func TestResolutionIsDeterministic(t *testing.T) {
	docs := []string{infra, hello, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 1.0.0}]\n")}
	var first []byte
	for i := 0; i < 5; i++ {
		st, err := resolveCluster(t, docs...)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if string(b) != string(first) {
			t.Fatalf("run %d produced different bytes", i)
		}
	}
}

func TestSystemAndPackMacros(t *testing.T) {
	macros := `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: mirror-1.0.0}
spec:
  name: mirror
  version: 1.0.0
  type: add-on
  layers:
    - name: spegel
      kind: addon
      pack: {name: spegel, version: 0.0.30}
      values: |
        charts:
          spegel:
            nameOverride: "{{.spectro.system.cluster.name}}-mirror"
            commonLabels:
              hello-ns: "{{.spectro.pack.hello-universe.manifests.hello-universe.namespace}}"
`
	st, err := resolveCluster(t, infra, hello, macros, cluster(`
  profiles:
    - {name: infra, version: 1.0.0}
    - {name: mirror, version: 1.0.0}
    - {name: hello, version: 1.0.0, variables: [{name: namespace, value: from-hello}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, st, "spegel", "charts.spegel.nameOverride"); got != "c1-mirror" {
		t.Errorf("nameOverride = %v", got)
	}
	if got := value(t, st, "spegel", "charts.spegel.commonLabels.hello-ns"); got != "from-hello" {
		t.Errorf("pack reference = %v, want the hello layer's final namespace", got)
	}
	// The pack's own namespaceLabels use the Kubernetes version macro.
	if got := value(t, st, "spegel", "pack.namespaceLabels.spegel-system"); !strings.HasSuffix(got.(string), "enforce-version=v1.37") {
		t.Errorf("namespaceLabels = %v, want enforce-version=v1.37", got)
	}
	if st.KubernetesVersion != "1.37.2" {
		t.Errorf("kubernetes version = %q", st.KubernetesVersion)
	}
}

func TestMaskedValuesAreCarriedAsSecrets(t *testing.T) {
	gitops := `
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: gitops-1.0.0}
spec:
  name: gitops
  version: 1.0.0
  type: add-on
  variables:
    - {name: token, masked: true, regex: "tok-[a-z0-9]+", default: tok-default}
  layers:
    - name: agent
      kind: addon
      pack: {name: akuity-agent, version: 0.30.0-5.5.2026}
      values: |
        charts:
          akuity-agent:
            annotations: ["token={{.spectro.var.token}}"]
            akuityApiKeySecret: "{{.spectro.var.token}}"
`
	st, err := resolveCluster(t, infra, gitops, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: gitops, version: 1.0.0, variables: [{name: token, value: tok-s3cret}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := st.Layer("agent")
	if got := value(t, st, "agent", "charts.akuity-agent.akuityApiKeySecret"); got != "tok-s3cret" {
		t.Errorf("the stack must carry the real value for the engine, got %v", got)
	}
	wantSecrets := "charts.akuity-agent.akuityApiKeySecret,charts.akuity-agent.annotations[0]"
	if strings.Join(l.Secrets, ",") != wantSecrets {
		t.Errorf("secrets = %v, want %s", l.Secrets, wantSecrets)
	}
	b, _ := json.Marshal(l.Redacted())
	if strings.Contains(string(b), "s3cret") {
		t.Errorf("redacted layer still shows the secret: %s", b)
	}

	// A masked value that breaks its rule is reported without being shown.
	_, err = resolveCluster(t, infra, gitops, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: gitops, version: 1.0.0, variables: [{name: token, value: NOT-valid-s3cret}]}]\n"))
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "the masked value does not match") {
		t.Errorf("error = %v, want a regex mismatch that hides the value", err)
	}
}

// A cluster may follow a range of a profile's versions: it gets the newest
// in range; an exact version still pins.
func TestVersionRangesPickTheNewestInRange(t *testing.T) {
	version := func(v string) string {
		return strings.NewReplacer("hello-1.0.0", "hello-"+v, "version: 1.0.0\n  type: add-on", "version: "+v+"\n  type: add-on").Replace(hello)
	}
	versions := []string{infra, version("1.0.0"), version("1.4.2"), version("1.10.0"), version("2.0.0"), version("2.1.0-rc.1")}
	for attach, want := range map[string]string{"1.x": "1.10.0", "~1.4": "1.4.2", ">=1.0.0 <2.0.0": "1.10.0", "1.4.2": "1.4.2", "*": "2.0.0", ">=2.1.0-rc.0": "2.1.0-rc.1"} {
		st, err := resolveCluster(t, append(versions, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: \""+attach+"\"}]\n"))...)
		if err != nil {
			t.Fatalf("%s: %v", attach, err)
		}
		l, _ := st.Layer("hello-universe")
		if l.ProfileVersion != want {
			t.Errorf("attach %q: got version %s, want %s", attach, l.ProfileVersion, want)
		}
	}
}

// A draft version runs nowhere: a range skips it, a cluster naming it is
// refused saying it is a draft; a preview (Facts.Drafts) resolves it.
func TestDraftVersionsAreSkippedUntilPublished(t *testing.T) {
	draft := strings.ReplaceAll(strings.ReplaceAll(hello, "hello-1.0.0", "hello-1.1.0"), "version: 1.0.0", "version: 1.1.0\n  draft: true")
	st, err := resolveCluster(t, hello, draft, cluster("  profiles: [{name: hello, version: 1.x}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := st.ProfileVersion("hello"); v != "1.0.0" {
		t.Errorf("1.x picked %s, want 1.0.0: the draft 1.1.0 is skipped", v)
	}
	_, err = resolveCluster(t, hello, draft, cluster("  profiles: [{name: hello, version: 1.1.0}]\n"))
	if err == nil || !strings.Contains(err.Error(), "version 1.1.0 of hello is a draft") {
		t.Errorf("naming the draft: %v, want it refused as a draft", err)
	}
	d := read(t, "fleet.yaml", strings.Join([]string{hello, draft, cluster("  profiles: [{name: hello, version: 1.1.0}]\n")}, "\n---\n"))
	st, err = stack.ResolveStack(d.Profiles, d.Clusters[0], realPacks(t), stack.Facts{Drafts: true})
	if err != nil || st.ProfileVersion("hello") != "1.1.0" {
		t.Errorf("a preview of the draft: %v", err)
	}
}
