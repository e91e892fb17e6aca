package engine_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

func cluster(t *testing.T) (*controlplane.ControlPlane, *engine.Engine, kubernetes.Interface) {
	t.Helper()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return cp, e, kubernetes.NewForConfigOrDie(cp.RESTConfig())
}

func TestRemovedAPIsAreRefusedBeforeAnythingIsApplied(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	st := profileStack(t, "legacy", "add-on",
		"watch addon kubewatch 1.0.7",
		"perms addon permission-manager 1.0.0",
		"hello addon hello-universe 1.2.0",
	)
	plan, res := deploy(t, e, st)
	refusals := map[string]string{}
	for _, l := range plan.Layers {
		if l.Action == engine.ActionRefuse {
			refusals[l.Name] = l.Reason
		}
	}
	for layer, want := range map[string][]string{
		"watch": {"ClusterRoleBinding watch-kubewatch uses rbac.authorization.k8s.io/v1beta1, removed in Kubernetes 1.22"},
		"perms": {
			"CustomResourceDefinition permissionmanagerusers.permissionmanager.user uses apiextensions.k8s.io/v1beta1, removed in Kubernetes 1.22",
			"RoleBinding permission-manager/permission-manager-service-account-rolebinding uses rbac.authorization.k8s.io/v1beta1",
		},
	} {
		for _, w := range want {
			if !strings.Contains(refusals[layer], w) {
				t.Errorf("layer %s: refusal %q lacks %q", layer, refusals[layer], w)
			}
		}
	}
	got := phases(res)
	if got["hello"].Phase != engine.PhaseReady || got["watch"].Phase != engine.PhaseFailed || got["perms"].Phase != engine.PhaseFailed {
		t.Errorf("phases: hello %s, watch %s, perms %s", got["hello"].Phase, got["watch"].Phase, got["perms"].Phase)
	}
	if got["watch"].Writes != 0 || got["perms"].Writes != 0 {
		t.Errorf("refused layers wrote to the cluster: %d, %d", got["watch"].Writes, got["perms"].Writes)
	}
	// Nothing of the refused layers exists.
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "permission-manager", metav1.GetOptions{}); err == nil {
		t.Errorf("namespace of a refused layer was created")
	}
}

func TestUpgradeChangeRemoveAndSwap(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	ctx := t.Context()
	image := func(ns, name string) string {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "missing: " + err.Error()
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	_, res := deploy(t, e, profileStack(t, "apps", "add-on",
		"hello addon hello-universe 1.1.1",
		"mirror addon spegel 0.0.18",
		"extra addon argo-rollouts 1.2.1",
	))
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady {
			t.Fatalf("install: layer %s %s: %s", l.Name, l.Phase, l.Message)
		}
	}
	if got := image("hello-universe", "hello-universe-deployment"); got != "ghcr.io/spectrocloud/hello-universe:1.1.1" {
		t.Fatalf("hello image %s", got)
	}

	// Upgrade both packs, change a value, remove "extra", and swap what
	// layer "web" (new) runs later.
	plan, res := deploy(t, e, profileStack(t, "apps", "add-on",
		"hello addon hello-universe 1.2.0 manifests: {hello-universe: {replicas: 2}}",
		"mirror addon spegel 0.0.30",
	))
	actions := map[string]engine.Action{}
	for _, l := range plan.Layers {
		actions[l.Name] = l.Action
	}
	if actions["hello"] != engine.ActionUpgrade || actions["mirror"] != engine.ActionUpgrade || actions["extra"] != engine.ActionRemove {
		t.Errorf("plan actions %v", actions)
	}
	for _, l := range plan.Layers {
		if l.Name == "hello" && (!strings.Contains(l.Reason, "version 1.1.1 → 1.2.0") || !strings.Contains(l.ValuesDiff, "+    replicas: 2")) {
			t.Errorf("hello plan: reason %q, values diff:\n%s", l.Reason, l.ValuesDiff)
		}
	}
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady && l.Phase != engine.PhaseRemoved {
			t.Errorf("upgrade: layer %s %s: %s", l.Name, l.Phase, l.Message)
		}
	}
	if got := image("hello-universe", "hello-universe-deployment"); got != "ghcr.io/spectrocloud/hello-universe:1.2.0" {
		t.Errorf("hello image after upgrade %s", got)
	}
	if d, _ := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); d == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas not changed to 2")
	}
	// The chart names its objects <release>-spegel.
	if ds, err := cs.AppsV1().DaemonSets("spegel-system").Get(ctx, "mirror-spegel", metav1.GetOptions{}); err != nil || !strings.Contains(ds.Spec.Template.Spec.Containers[0].Image, "spegel-org/spegel") {
		t.Errorf("spegel not upgraded to 0.0.30 (new image repository): %v", err)
	}
	if _, err := cs.AppsV1().Deployments("argo-rollouts").Get(ctx, "argo-rollouts", metav1.GetOptions{}); err == nil {
		t.Errorf("removed layer's deployment still exists")
	}
	// Strata created the removed layer's namespace; it goes with it. The
	// swap below installs into it again while it may still terminate.
	if ns, err := cs.CoreV1().Namespaces().Get(ctx, "argo-rollouts", metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("removed layer's namespace argo-rollouts kept: %v", ns.Annotations)
	}

	// Swap: the layer named "mirror" now runs a different pack.
	plan, res = deploy(t, e, profileStack(t, "apps", "add-on",
		"hello addon hello-universe 1.2.0 manifests: {hello-universe: {replicas: 2}}",
		"mirror addon argo-rollouts 1.2.1",
	))
	for _, l := range plan.Layers {
		if l.Name == "mirror" && (l.Action != engine.ActionUpgrade || !strings.Contains(l.Reason, "swapped spegel → argo-rollouts")) {
			t.Errorf("swap plan: %s %q", l.Action, l.Reason)
		}
	}
	if got := phases(res)["mirror"]; got.Phase != engine.PhaseReady {
		t.Errorf("swap: %s %s", got.Phase, got.Message)
	}
	if _, err := cs.AppsV1().DaemonSets("spegel-system").Get(ctx, "mirror-spegel", metav1.GetOptions{}); err == nil {
		t.Errorf("swapped-out spegel daemonset still exists")
	}
	if _, err := cs.AppsV1().Deployments("argo-rollouts").Get(ctx, "argo-rollouts", metav1.GetOptions{}); err != nil {
		t.Errorf("swapped-in argo-rollouts missing: %v", err)
	}
}

func TestDriftIsFoundAndRepaired(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	ctx := t.Context()
	st := profileStack(t, "ops", "add-on",
		"hello addon hello-universe 1.2.0",
		"tekton addon tekton-operator 0.61.0",
	)
	if _, res := deploy(t, e, st); res.Failed() {
		t.Fatalf("deploy: %+v", res.Layers)
	}
	if err := cs.AppsV1().Deployments("hello-universe").Delete(ctx, "hello-universe-deployment", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("tekton-pipelines").Get(ctx, "tekton-operator-config-logging", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	original := cm.Data["loglevel.controller"]
	cm.Data["loglevel.controller"] = "debug-by-hand"
	if _, err := cs.CoreV1().ConfigMaps("tekton-pipelines").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	_, drifts, err := e.Diff(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if d := drifts["hello"]; len(d) != 1 || !d[0].Missing || d[0].Object != "Deployment hello-universe/hello-universe-deployment" {
		t.Errorf("hello drift = %v, want the deleted deployment", d)
	}
	if d := drifts["tekton"]; len(d) != 1 || d[0].Object != "ConfigMap tekton-pipelines/tekton-operator-config-logging" || !strings.Contains(strings.Join(d[0].Fields, ","), "data.loglevel.controller") {
		t.Errorf("tekton drift = %v, want the edited config map", d)
	}

	_, res := deploy(t, e, st)
	if res.Failed() {
		t.Fatalf("repair: %+v", res.Layers)
	}
	if _, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("deployment not restored: %v", err)
	}
	cm, _ = cs.CoreV1().ConfigMaps("tekton-pipelines").Get(ctx, "tekton-operator-config-logging", metav1.GetOptions{})
	if cm.Data["loglevel.controller"] != original {
		t.Errorf("config map value = %q, want %q back", cm.Data["loglevel.controller"], original)
	}
	if _, drifts, _ = e.Diff(ctx, st); len(drifts) != 0 {
		t.Errorf("drift after repair: %v", drifts)
	}
}

func TestAFailingLayerBlocksOnlyItsDependents(t *testing.T) {
	t.Parallel()
	_, e, _ := cluster(t)
	// akuity-agent refuses to render without its required values.
	st := profileStack(t, "mixed", "add-on",
		"agent addon akuity-agent 0.30.0-5.5.2026",
		"hello addon hello-universe 1.2.0",
	)
	st.Layers[1].DependsOn = nil
	dependent := st.Layers[1]
	dependent.Name, dependent.ReleaseName, dependent.DependsOn = "after-agent", "after-agent", []string{"agent"}
	dependent.Values = map[string]any{"manifests": map[string]any{"hello-universe": map[string]any{"namespace": "other", "port": 8080.0, "replicas": 1.0, "images": map[string]any{"hellouniverse": "x:1"}, "apiEnabled": false}}}
	dependent.Namespace = "other"
	st.Layers = append(st.Layers, dependent)

	_, res := deploy(t, e, st)
	got := phases(res)
	if got["agent"].Phase != engine.PhaseFailed || !strings.Contains(got["agent"].Message, "akuityApiKeyId is required") {
		t.Errorf("agent: %s %q", got["agent"].Phase, got["agent"].Message)
	}
	if got["after-agent"].Phase != engine.PhaseBlocked {
		t.Errorf("after-agent: %s, want Blocked", got["after-agent"].Phase)
	}
	if got["hello"].Phase != engine.PhaseReady {
		t.Errorf("hello: %s %s, want Ready despite the failure", got["hello"].Phase, got["hello"].Message)
	}
}

// liveVersions reads an object's written version from the API server, as a
// watch would have seen it.
type liveVersions struct{ dyn dynamic.Interface }

func (l liveVersions) Seen(gvr schema.GroupVersionResource, ns, name string) (engine.SeenObject, bool) {
	u, err := l.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return engine.SeenObject{}, false
	}
	return engine.Seeing(u), true
}

// What an engine remembers of the objects it found applied goes with the
// layer that held them: a long-lived engine does not grow with history.
func TestRemovedLayersAreForgotten(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	versions := liveVersions{dynamic.NewForConfigOrDie(cp.RESTConfig())}
	newEngine := func() *engine.Engine {
		e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 2 * time.Minute, Versions: versions})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// Each stack is applied twice: the second time finds every object of
	// its unchanged layers applied and remembers it.
	settle := func(e *engine.Engine, st *stack.Stack) []string {
		for range 2 {
			if _, res := deploy(t, e, st); res.Failed() {
				t.Fatalf("deploy: %+v", res.Layers)
			}
		}
		return engine.CheckedObjects(e)
	}
	both := profileStack(t, "ops", "add-on", "hello addon hello-universe 1.2.0", "spegel addon spegel 0.0.30")
	helloOnly := profileStack(t, "ops", "add-on", "hello addon hello-universe 1.2.0")

	e := newEngine()
	before := settle(e, both)
	after := settle(e, helloOnly)
	want := settle(newEngine(), helloOnly)
	if len(after) == 0 || len(after) >= len(before) {
		t.Fatalf("remembered %d objects with both layers, %d after spegel went", len(before), len(after))
	}
	if !slices.Equal(after, want) {
		t.Errorf("after spegel's removal the engine remembers\n%v\nwant what an engine that never had it remembers\n%v", after, want)
	}
}

// staleVersions is a watch that can fall behind: once frozen, it shows
// each object as it last saw it.
type staleVersions struct {
	live   liveVersions
	mu     sync.Mutex
	frozen bool
	last   map[string]engine.SeenObject
}

func (s *staleVersions) Seen(gvr schema.GroupVersionResource, ns, name string) (engine.SeenObject, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := gvr.String() + ns + "/" + name
	if seen, ok := s.last[key]; ok && s.frozen {
		return seen, true
	}
	seen, ok := s.live.Seen(gvr, ns, name)
	if ok {
		s.last[key] = seen
	}
	return seen, ok
}

func (s *staleVersions) freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = true
}

// An object found ready is taken as ready while the watch shows it
// unchanged — but not after Strata changed it, even when the watch has
// not seen that write yet: an upgrade waits for its new pods.
func TestAnUpgradeWaitsForWhatItChanged(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	versions := &staleVersions{live: liveVersions{dynamic.NewForConfigOrDie(cp.RESTConfig())}, last: map[string]engine.SeenObject{}}
	e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: 10 * time.Second, Versions: versions})
	if err != nil {
		t.Fatal(err)
	}
	layer := func(nodeSelector string) *stack.Stack {
		return inlineStack("stale", "web", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: `+nodeSelector+`
      containers: [{name: web, image: registry.k8s.io/pause:3.10}]
`)
	}
	if _, res := deploy(t, e, layer("{}")); res.Failed() {
		t.Fatalf("install: %+v", res.Layers)
	}
	// Found ready at the version the watch shows; then the watch falls
	// behind.
	for range 2 {
		if _, res := deploy(t, e, layer("{}")); res.Failed() {
			t.Fatalf("resync: %+v", res.Layers)
		}
	}
	versions.freeze()
	// New pods that no node takes: the Deployment cannot become ready.
	_, res := deploy(t, e, layer("{pool: none}"))
	if l := phases(res)["web"]; l.Phase != engine.PhaseFailed || !strings.Contains(l.Message, "not Ready") {
		t.Errorf("upgrade to pods no node takes: %s %q; want it to wait and fail", l.Phase, l.Message)
	}
}

// The stack last applied, planned from what the cluster records (as an
// agent does while its management plane is away), keeps to the drift
// policy of that apply: drift reported stays as it is, drift repaired is
// put back; a policy changed since is recorded by the next apply.
func TestTheStackLastAppliedKeepsItsDriftPolicy(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{})
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	engineWith := func(reportDrift bool) *engine.Engine {
		t.Helper()
		e, err := engine.New(engine.Options{RESTConfig: cp.RESTConfig(), Timeout: time.Minute, ReportDrift: reportDrift})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	st := inlineStack("away", "settings", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: strict}\n")
	editByHand := func() {
		t.Helper()
		cm, err := cs.CoreV1().ConfigMaps("settings").Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["mode"] = "lax"
		if _, err := cs.CoreV1().ConfigMaps("settings").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
	}
	// Kept from the record alone, by an engine told nothing of the policy.
	keepLastApplied := func() (engine.LayerResult, string) {
		t.Helper()
		e := engineWith(false)
		plan, err := e.LastApplied(ctx, "away")
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		cm, err := cs.CoreV1().ConfigMaps("settings").Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return phases(res)["settings"], cm.Data["mode"]
	}

	if _, res := deploy(t, engineWith(true), st); res.Failed() {
		t.Fatalf("deploy: %+v", res.Layers)
	}
	editByHand()
	// Each resync while away, not only the first.
	for range 2 {
		if l, mode := keepLastApplied(); l.Phase != engine.PhaseDrifted || len(l.Drifted) != 1 || mode != "lax" {
			t.Fatalf("kept under drift policy Report: %s, drifted %v, mode %q; want the edit reported and left", l.Phase, l.Drifted, mode)
		}
	}

	// The policy becomes Repair: the next apply, which repairs, records it.
	if _, res := deploy(t, engineWith(false), st); res.Failed() {
		t.Fatalf("deploy: %+v", res.Layers)
	}
	editByHand()
	if l, mode := keepLastApplied(); l.Phase != engine.PhaseReady || len(l.Repaired) != 1 || mode != "strict" {
		t.Errorf("kept under drift policy Repair: %s, repaired %v, mode %q; want the edit put back", l.Phase, l.Repaired, mode)
	}
}

// A process killed in the middle of an upgrade leaves the release's new
// revision pending; the next change of the layer goes through all the
// same, under that revision number: one revision per change, none stuck.
func TestAnUpgradeInterruptedByAKilledProcessIsMadeAgain(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	ctx := t.Context()
	deploy(t, e, profileStack(t, "apps", "add-on", "hello addon hello-universe 1.2.0"))
	if err := engine.InterruptUpgrade(e, "hello-universe", "hello"); err != nil {
		t.Fatal(err)
	}
	_, res := deploy(t, e, profileStack(t, "apps", "add-on", "hello addon hello-universe 1.2.0 manifests: {hello-universe: {replicas: 2}}"))
	if l := res.Layers[0]; l.Phase != engine.PhaseReady {
		t.Fatalf("the upgrade after an interrupted one: %s %s", l.Phase, l.Message)
	}
	secrets, err := cs.CoreV1().Secrets(engine.InventoryNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=hello"})
	if err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, s := range secrets.Items {
		records = append(records, "v"+s.Labels["version"]+" "+s.Labels["status"])
	}
	slices.Sort(records)
	if got, want := strings.Join(records, ", "), "v1 superseded, v2 deployed"; got != want {
		t.Errorf("release records %q, want %q", got, want)
	}
}

// An upgrade that finished in Helm but was not recorded in the inventory
// (the API server went away, or the process was killed, in between) is not
// made again: the next plan sees the release already runs that content,
// leaves it unchanged and records it. One revision per change.
func TestAChangeMadeButNotRecordedIsNotMadeAgain(t *testing.T) {
	t.Parallel()
	_, e, cs := cluster(t)
	ctx := t.Context()
	first := profileStack(t, "apps", "add-on", "hello addon hello-universe 1.2.0")
	deploy(t, e, first)
	inventories := cs.CoreV1().ConfigMaps(engine.InventoryNamespace)
	name := "stack-" + first.Cluster
	before, err := inventories.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed := profileStack(t, "apps", "add-on", "hello addon hello-universe 1.2.0 manifests: {hello-universe: {replicas: 2}}")
	deploy(t, e, changed)
	// The inventory as it was before the upgrade: the record was lost.
	now, err := inventories.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now.Data = before.Data
	if _, err := inventories.Update(ctx, now, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	plan, res := deploy(t, e, changed)
	if l := plan.Layers[0]; l.Action != engine.ActionUnchanged {
		t.Errorf("the change already made is planned as %s (%s)", l.Action, l.Reason)
	}
	if l := res.Layers[0]; l.Phase != engine.PhaseReady {
		t.Errorf("layer %s: %s", l.Phase, l.Message)
	}
	secrets, err := cs.CoreV1().Secrets(engine.InventoryNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 2 {
		t.Errorf("%d release revisions, want 2 (install, one upgrade)", len(secrets.Items))
	}
	recorded, err := inventories.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(recorded.Data, before.Data) {
		t.Error("the inventory was not brought up to date with the change the release runs")
	}
}
