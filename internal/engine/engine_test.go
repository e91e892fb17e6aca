package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
	"strata.dev/strata/internal/version"
)

var (
	catalogOnce sync.Once
	catalog     *pack.Catalog
)

func packs(t testing.TB) *pack.Catalog {
	t.Helper()
	catalogOnce.Do(func() {
		var err error
		catalog, err = pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
		if err != nil {
			panic(err)
		}
	})
	return catalog
}

// profileStack builds a one-profile stack (the profile previewed alone,
// variables at their defaults) from "name kind pack version [values]" lines.
func profileStack(t testing.TB, name, typ string, layers ...string) *stack.Stack {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: strata.dev/v1alpha1\nkind: ClusterProfile\nmetadata: {name: " + name + "-1.0.0}\nspec:\n  name: " + name + "\n  version: 1.0.0\n  type: " + typ + "\n  layers:\n")
	for _, l := range layers {
		f := strings.Fields(l)
		b.WriteString("    - name: " + f[0] + "\n      kind: " + f[1] + "\n      pack: {name: " + f[2] + ", version: \"" + f[3] + "\"}\n")
		if len(f) > 4 {
			b.WriteString("      values: |\n        " + strings.Join(f[4:], " ") + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "profile.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := profile.ReadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.ResolveProfile(docs.Profiles[0], packs(t), stack.Facts{KubernetesVersion: version.Kubernetes})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// inlineStack is a stack of one layer of inline manifests, named like its
// release and namespace, from a profile named like the cluster, 1.0.0.
func inlineStack(cluster, name, inline string) *stack.Stack {
	return &stack.Stack{Cluster: cluster, Layers: []stack.Layer{{
		Name: name, Profile: cluster, ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourceManifests,
		Namespace: name, ReleaseName: name, Values: map[string]any{},
		Spec: v1.Layer{Name: name, Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: inline}},
	}}}
}

func deploy(t *testing.T, e *engine.Engine, st *stack.Stack) (*engine.Plan, *engine.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	plan, err := e.Plan(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Apply(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	return plan, res
}

func phases(res *engine.Result) map[string]engine.LayerResult {
	out := map[string]engine.LayerResult{}
	for _, l := range res.Layers {
		out[l.Name] = l
	}
	return out
}

func TestDeployRealPacksThenNoOp(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 2})
	e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	st := profileStack(t, "fleet", "full",
		"os os ubuntu 24.04",
		"kubernetes k8s kubernetes 1.37.2",
		"antrea cni antrea 1.9.0",
		"nfs csi csi-nfs-subdir-external 4.0.13",
		"hello addon hello-universe 1.2.0",
		"spegel addon spegel 0.0.30",
		"rollouts addon argo-rollouts 1.2.1",
		"tekton addon tekton-operator 0.61.0",
	)
	plan, res := deploy(t, e, st)
	for _, l := range plan.Layers {
		if l.Action != engine.ActionInstall {
			t.Errorf("first plan: layer %s action %s, want install", l.Name, l.Action)
		}
	}
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady {
			t.Errorf("layer %s: %s %s", l.Name, l.Phase, l.Message)
		}
	}

	// antrea's aggregated APIs never get endpoints from fake pods: the layer
	// is Ready and says so plainly, instead of hanging.
	if msg := phases(res)["antrea"].Message; !strings.Contains(msg, "APIServices not Available, as expected on simulated nodes") || !strings.Contains(msg, "v1beta2.controlplane.antrea.io") {
		t.Errorf("antrea message %q does not explain its APIServices", msg)
	}

	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	dep, err := cs.AppsV1().Deployments("hello-universe").Get(t.Context(), "hello-universe-deployment", metav1.GetOptions{})
	if err != nil || dep.Status.ReadyReplicas != 1 {
		t.Errorf("hello-universe deployment: %v, ready %d", err, dep.Status.ReadyReplicas)
	}
	ns, err := cs.CoreV1().Namespaces().Get(t.Context(), "spegel-system", metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("spegel namespace labels: %v %v", err, ns.Labels)
	}

	before := e.Requests()
	plan, res = deploy(t, e, st)
	used := e.Requests().Sub(before)
	for _, l := range plan.Layers {
		if l.Action != engine.ActionUnchanged {
			t.Errorf("second plan: layer %s action %s (%s), want unchanged", l.Name, l.Action, l.Reason)
		}
	}
	if used.Writes != 0 {
		t.Errorf("a no-op apply made %d write requests, want 0", used.Writes)
	}
	t.Logf("no-op apply: %d reads, %d writes, %d dry-run applies", used.Reads, used.Writes, used.DryRuns)
	for _, l := range res.Layers {
		if len(l.Repaired) > 0 {
			t.Errorf("layer %s: a no-op apply repaired %v", l.Name, l.Repaired)
		}
	}
}
