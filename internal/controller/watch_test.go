package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
	"strata.dev/strata/internal/testenv"
)

// A resync of layers nobody touched checks them by the resourceVersions
// its watch saw — no dry-run apply, no read of the objects — and an object
// changed by hand is still found and put back.
func TestWatchedObjectsAreCheckedOnlyWhenWritten(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	ctx := context.Background()
	watch, err := watchDrift(cp.RESTConfig(), func() {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.stop)
	// The objects the engine reads, by path.
	var readMu sync.Mutex
	var read []string
	cfg := rest.CopyConfig(cp.RESTConfig())
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet {
				readMu.Lock()
				read = append(read, req.URL.Path)
				readMu.Unlock()
			}
			return next.RoundTrip(req)
		})
	})
	readSince := func(start int) []string {
		readMu.Lock()
		defer readMu.Unlock()
		return slices.Clone(read[start:])
	}
	e, err := engine.New(engine.Options{RESTConfig: cfg, Timeout: time.Minute, Versions: watch})
	if err != nil {
		t.Fatal(err)
	}
	st := manifestsStack("watched", "settings", `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: strict}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: idle}
spec:
  replicas: 1
  selector: {matchLabels: {app: idle}}
  template:
    metadata: {labels: {app: idle}}
    spec: {containers: [{name: idle, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.strata.dev}
spec:
  group: example.strata.dev
  names: {kind: Gadget, plural: gadgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`)
	apply := func() (engine.LayerResult, engine.Requests) {
		t.Helper()
		before := e.Requests()
		plan, err := e.Plan(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		return res.Layers[0], e.Requests().Sub(before)
	}
	if l, _ := apply(); l.Phase != engine.PhaseReady {
		t.Fatalf("install: %s %s", l.Phase, l.Message)
	}
	seen := func(gvr schema.GroupVersionResource, name string, check func(version string) bool) {
		t.Helper()
		ns := "settings"
		if gvr == crds {
			ns = ""
		}
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			got, ok := watch.Seen(gvr, ns, name)
			return ok && check(got.Version), nil
		})
		if err != nil {
			t.Fatalf("the watch never saw %s %s as expected: %v", gvr.Resource, name, err)
		}
	}
	anyVersion := func(string) bool { return true }
	configMapSeen := func(check func(rv string) bool) { t.Helper(); seen(configMaps, "settings", check) }
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	cm, err := cs.CoreV1().ConfigMaps("settings").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	configMapSeen(func(rv string) bool { return rv == cm.ResourceVersion })
	seen(serviceAccounts, "runner", anyVersion)
	seen(daemonSets, "agent", anyVersion)
	seen(crds, "gadgets.example.strata.dev", anyVersion)
	// The watch holds a stream for the kinds the layer uses, and for the
	// cluster's APIs: not for every kind it could watch.
	watch.mu.Lock()
	var kinds []string
	for gvr := range watch.kinds {
		kinds = append(kinds, gvr.Resource)
	}
	watch.mu.Unlock()
	slices.Sort(kinds)
	if want := []string{"apiservices", "configmaps", "customresourcedefinitions", "daemonsets", "deployments", "serviceaccounts"}; !slices.Equal(kinds, want) {
		t.Errorf("the watch watches %v; want the layer's kinds and the API kinds: %v", kinds, want)
	}
	// The manager reads the cluster's APIs again when its watch saw a CRD
	// come.
	if watch.APIsChanged() {
		e.Refresh()
	}
	// The Deployment controller notes its revision on the Deployment after
	// the install: not a change to what Strata applies.
	seen(deployments, "idle", func(string) bool {
		dep, err := cs.AppsV1().Deployments("settings").Get(ctx, "idle", metav1.GetOptions{})
		obj, ok := watch.get(deployments, "settings", "idle")
		return err == nil && dep.Annotations["deployment.kubernetes.io/revision"] != "" && ok && obj.ResourceVersion == dep.ResourceVersion
	})
	// What the install wrote is known as applied: once the watch has seen
	// it, a resync checks nothing against the server (the DaemonSet's
	// metadata as the watch sees it lacks an annotation the whole object
	// has), and reads only what has a status to be ready by.
	readMu.Lock()
	start := len(read)
	readMu.Unlock()
	if l, req := apply(); l.Phase != engine.PhaseReady || req.DryRuns != 0 || l.Writes != 0 {
		t.Errorf("resync after the install: %s, %d dry-runs, %d writes; want none", l.Phase, req.DryRuns, l.Writes)
	}
	paths := readSince(start)
	for _, p := range []string{"/api/v1/namespaces/settings/configmaps/settings", "/api/v1/namespaces/settings/serviceaccounts/runner",
		"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.strata.dev"} {
		if slices.Contains(paths, p) {
			t.Errorf("the resync read %s, which the watch sees and which has no status to wait for (or is an established CRD); reads: %v", p, paths)
		}
	}
	// Once nothing about the objects changed since they were found ready
	// (the Deployment's status may settle a moment after it is available),
	// a resync reads none of them.
	objectReads := func(paths []string) []string {
		return slices.DeleteFunc(paths, func(p string) bool { return !strings.Contains(p, "/settings/") && !strings.Contains(p, "gadgets") })
	}
	var last []string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		readMu.Lock()
		start = len(read)
		readMu.Unlock()
		if l, _ := apply(); l.Phase != engine.PhaseReady {
			return false, fmt.Errorf("resync: %s %s", l.Phase, l.Message)
		}
		last = objectReads(readSince(start))
		return len(last) == 0, nil
	})
	if err != nil {
		t.Errorf("resyncs of objects nothing changed kept reading them (last: %v): %v", last, err)
	}

	// A controller writing a Deployment's status changes nothing Strata
	// applies: no check for it.
	dep, err := cs.AppsV1().Deployments("settings").Get(ctx, "idle", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Status.CollisionCount = ptr.To[int32](1)
	written, err := cs.AppsV1().Deployments("settings").UpdateStatus(ctx, dep, metav1.UpdateOptions{FieldManager: "some-controller"})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		obj, ok := watch.get(deployments, "settings", "idle")
		return ok && obj.ResourceVersion == written.ResourceVersion, nil
	})
	if err != nil {
		t.Fatalf("the watch never saw the status write: %v", err)
	}
	readMu.Lock()
	start = len(read)
	readMu.Unlock()
	if l, req := apply(); l.Phase != engine.PhaseReady || req.DryRuns != 0 || l.Writes != 0 {
		t.Errorf("resync after a status write: %s, %d dry-runs, %d writes; want none", l.Phase, req.DryRuns, l.Writes)
	}
	// Its status changed: it is read to know it still ready.
	if got := objectReads(readSince(start)); !slices.Equal(got, []string{"/apis/apps/v1/namespaces/settings/deployments/idle"}) {
		t.Errorf("the resync after the Deployment's status changed read %v; want the Deployment alone", got)
	}

	cm.Data["mode"] = "lax"
	edited, err := cs.CoreV1().ConfigMaps("settings").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatal(err)
	}
	configMapSeen(func(rv string) bool { return rv == edited.ResourceVersion })
	l, req := apply()
	if l.Phase != engine.PhaseReady || len(l.Repaired) != 1 || req.DryRuns != 1 {
		t.Errorf("resync after a hand edit: %s, repaired %v, %d dry-runs; want the ConfigMap alone checked and repaired", l.Phase, l.Repaired, req.DryRuns)
	}
	got, err := cs.CoreV1().ConfigMaps("settings").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || got.Data["mode"] != "strict" {
		t.Errorf("ConfigMap after repair: %v %v", got.Data, err)
	}
	configMapSeen(func(rv string) bool { return rv == got.ResourceVersion })
	if l, req := apply(); req.DryRuns != 0 || l.Writes != 0 {
		t.Errorf("resync after the repair: %d dry-runs, %d writes; want none", req.DryRuns, l.Writes)
	}
}

// listed says whether each kind watched has been listed.
func (w *driftWatch) listed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range w.kinds {
		if !k.listed.Load() {
			return false
		}
	}
	return true
}

var (
	configMaps      = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	serviceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	daemonSets      = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	crds            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	deployments     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// A kept engine reads the cluster's APIs again only when its watch saw them
// change: a resync costs no discovery, and a kind someone adds by hand (a
// CRD) is served to the next plan without a restart.
func TestClusterAPIsAreReadAgainWhenTheyChange(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{})
	ctx := context.Background()
	watch, err := watchDrift(cp.RESTConfig(), func() {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.stop)
	var discoveries atomic.Int64
	cfg := rest.CopyConfig(cp.RESTConfig())
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if p := req.URL.Path; p == "/version" || p == "/api" || p == "/apis" {
				discoveries.Add(1)
			}
			return next.RoundTrip(req)
		})
	})
	e, err := engine.New(engine.Options{RESTConfig: cfg, Timeout: time.Minute, Versions: watch})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return watch.listed(), nil
	}); err != nil {
		t.Fatalf("watch never listed its kinds: %v", err)
	}
	st := manifestsStack("apis", "widgets", `apiVersion: example.strata.dev/v1
kind: Widget
metadata: {name: first}
spec: {size: 3}
`)
	// What the manager does at each reconcile of a kept engine.
	resync := func() (engine.Action, int64) {
		t.Helper()
		before := discoveries.Load()
		if watch.APIsChanged() {
			e.Refresh()
		}
		plan, err := e.Plan(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		return plan.Layers[0].Action, discoveries.Load() - before
	}
	if action, reads := resync(); action != engine.ActionRefuse || reads == 0 {
		t.Fatalf("first plan: %s after %d discovery reads, want the unserved kind refused after reading the APIs", action, reads)
	}
	if action, reads := resync(); action != engine.ActionRefuse || reads != 0 {
		t.Fatalf("resync: %s after %d discovery reads, want refused again with none", action, reads)
	}
	testenv.CreateCRD(t, cp.RESTConfig(), "example.strata.dev", "Widget", "widgets")
	var action engine.Action
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		action, _ = resync()
		return action == engine.ActionInstall, nil
	})
	if err != nil {
		t.Fatalf("after a CRD was added by hand the layer is still %s", action)
	}
}

// After a watch broke, the kind is listed again: what changed, came or went
// while it was broken is told as if watched, and the first list tells
// nothing.
func TestAKindListedAgainTellsWhatChangedMeanwhile(t *testing.T) {
	var told []string
	k := &kindWatch{objects: map[string]seenMeta{}, events: kindEvents{
		added:   func() { told = append(told, "added") },
		updated: func(old, obj seenMeta) { told = append(told, "updated to "+obj.ResourceVersion) },
		deleted: func() { told = append(told, "deleted") },
	}}
	object := func(name, rv string) any {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
	}
	if _, ok := k.get("ns/a"); ok {
		t.Error("an object was seen before the first list")
	}
	if err := k.Replace([]any{object("a", "1"), object("b", "1")}, "1"); err != nil {
		t.Fatal(err)
	}
	if len(told) != 0 {
		t.Errorf("the first list told %v", told)
	}
	if m, ok := k.get("ns/a"); !ok || m.ResourceVersion != "1" {
		t.Errorf("after the first list: %v %v", m, ok)
	}
	if err := k.Replace([]any{object("a", "5"), object("c", "4")}, "5"); err != nil {
		t.Fatal(err)
	}
	slices.Sort(told)
	if want := []string{"added", "deleted", "updated to 5"}; !slices.Equal(told, want) {
		t.Errorf("listed again: told %v, want %v", told, want)
	}
	if _, ok := k.get("ns/b"); ok {
		t.Error("an object gone from the list is still seen")
	}
}

// A cluster's watches ride the engine's connection, and ask for answers
// uncompressed: one connection per cluster, no decompressor per watch.
func TestWatchesShareTheEngineConnectionUncompressed(t *testing.T) {
	t.Parallel()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{})
	ctx := context.Background()
	var compressedWatches atomic.Int64
	cfg := cp.RESTConfig()
	// Connections are counted where they arrive: a dial function of the
	// test's own would give every client a transport of its own.
	server, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	relay := testenv.StartProxy(t, server.Host)
	cfg.Host = "https://" + relay.Addr
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err == nil && req.URL.Query().Get("watch") == "true" && (resp.Uncompressed || resp.Header.Get("Content-Encoding") != "") {
				compressedWatches.Add(1)
			}
			return resp, err
		})
	})
	watchCfg := rest.CopyConfig(cfg)
	watchCfg.Timeout = 0
	watch, err := watchDrift(watchCfg, func() {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.stop)
	e, err := engine.New(engine.Options{RESTConfig: cfg, Timeout: time.Minute, Versions: watch})
	if err != nil {
		t.Fatal(err)
	}
	st := manifestsStack("shared", "settings", `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: strict}
`)
	plan, err := e.Plan(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	// A second plan reads the ConfigMap's version from its watch.
	if _, err := e.Plan(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return watch.listed(), nil
	}); err != nil {
		t.Fatalf("watch never listed its kinds: %v", err)
	}
	// Clients that dialled at once before the first connection was up
	// close the spare ones.
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return relay.Open() == 1, nil
	}); err != nil {
		t.Errorf("engine and watches hold %d connections to the cluster, want one", relay.Open())
	}
	if n := compressedWatches.Load(); n != 0 {
		t.Errorf("%d watches were answered compressed", n)
	}
}

// Which writes to a watched object wake its cluster up for a drift check:
// a hand's, not Strata's own, a controller's to the status, or the
// Deployment controller noting its revision.
func TestOnlyAHandsEditWakesTheClusterUp(t *testing.T) {
	at := func(sec int) *metav1.Time { return &metav1.Time{Time: time.Unix(int64(sec), 0)} }
	object := func(rv string, generation int64, annotations map[string]string, writes ...metav1.ManagedFieldsEntry) seenMeta {
		t.Helper()
		m, _, err := metadataOf(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web", ResourceVersion: rv, Generation: generation, Annotations: annotations, ManagedFields: writes,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	strata := metav1.ManagedFieldsEntry{Manager: engine.FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: at(1)}
	before := object("1", 1, nil, strata)
	for _, c := range []struct {
		name  string
		after seenMeta
		wake  bool
	}{
		{"nothing written", object("1", 1, nil, strata), false},
		{"Strata applied", object("2", 2, nil, metav1.ManagedFieldsEntry{Manager: engine.FieldManager, Time: at(2)}), false},
		{"a controller wrote the status", object("2", 1, nil, strata, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Subresource: "status", Time: at(2)}), false},
		{"the revision was noted", object("2", 1, map[string]string{"deployment.kubernetes.io/revision": "1"}, strata, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Time: at(2)}), false},
		{"scaled by hand", object("2", 2, nil, strata, metav1.ManagedFieldsEntry{Manager: "kubectl-edit", Time: at(2)}), true},
		{"annotated by hand", object("2", 1, map[string]string{"team": "web"}, strata, metav1.ManagedFieldsEntry{Manager: "kubectl-annotate", Time: at(2)}), true},
		{"written by someone unknown", object("2", 2, nil), true},
	} {
		if got := changedByHand(before, c.after); got != c.wake {
			t.Errorf("%s: wakes the cluster %v, want %v", c.name, got, c.wake)
		}
	}
}

// manifestsStack is a cluster's stack of one layer of plain manifests,
// installed in a namespace of the layer's name.
func manifestsStack(cluster, layer, manifests string) *stack.Stack {
	return &stack.Stack{Cluster: cluster, Layers: []stack.Layer{{
		Name: layer, Profile: "p", ProfileVersion: "1.0.0", Kind: v1.LayerAddon, Source: stack.SourceManifests,
		Namespace: layer, ReleaseName: layer, Values: map[string]any{},
		Spec: v1.Layer{Name: layer, Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: manifests}},
	}}}
}
