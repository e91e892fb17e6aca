package controller_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/testenv"
)

// platformProfile is a shared add-on profile. Version 1.0.0 runs
// hello-universe 1.1.1 and spegel; 1.1.0 upgrades hello-universe to 1.2.0,
// removes spegel and adds a banner layer.
func platformProfile(version string) *v1.ClusterProfile {
	p := &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-" + version, Namespace: controller.SharedNamespace},
		Spec:       v1.ClusterProfileSpec{Name: "platform", Version: version, Type: v1.ProfileAddOn},
	}
	switch version {
	case "1.0.0":
		p.Spec.Layers = []v1.Layer{
			{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.1.1"}},
			{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.18"}},
		}
	case "1.1.0":
		// Its clusters wait for approval, unless they say otherwise.
		p.Spec.UpdatePolicy = v1.UpdateManual
		p.Spec.Layers = []v1.Layer{
			{Name: "hello-universe", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"}},
			{Name: "banner", Kind: v1.LayerAddon, Namespace: "banner", Manifests: &v1.ManifestSource{
				Inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: banner, namespace: banner}\ndata: {message: platform 1.1.0}\n",
			}},
		}
	}
	return p
}

// live is what a workload cluster runs of the platform profile.
type live struct {
	hello  string // hello-universe image, "" when absent
	spegel bool
	banner bool
}

func liveOf(t *testing.T, cp *controlplane.ControlPlane) live {
	t.Helper()
	cs, err := cp.Clientset()
	must(t, err)
	ctx := context.Background()
	var l live
	if d, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err == nil && d.Status.ReadyReplicas == *d.Spec.Replicas {
		l.hello = d.Spec.Template.Spec.Containers[0].Image[strings.LastIndex(d.Spec.Template.Spec.Containers[0].Image, ":")+1:]
	}
	_, err = cs.AppsV1().DaemonSets("spegel-system").Get(ctx, "spegel", metav1.GetOptions{})
	l.spegel = err == nil
	_, err = cs.CoreV1().ConfigMaps("banner").Get(ctx, "banner", metav1.GetOptions{})
	l.banner = err == nil
	return l
}

// Three clusters share an add-on profile and follow its 1.x versions. A new
// version adds a layer, upgrades one and removes one, and asks for Manual
// updates: the clusters that set Automatic themselves converge; the third,
// which sets no policy, shows exactly that plan, runs the old version
// meanwhile, and converges once approved.
func TestFleetFollowsANewProfileVersion(t *testing.T) {
	t.Parallel()
	mgmt, c := managementPlane(t, 0, controller.SharedNamespace, "retail")
	ctx := context.Background()
	must(t, c.Create(ctx, platformProfile("1.0.0")))
	workloads := map[string]*controlplane.ControlPlane{}
	for _, name := range []string{"store-1", "store-2", "store-3"} {
		workloads[name] = testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: name, Nodes: 1})
	}
	follow := v1.ProfileAttachment{Name: "platform", Version: "1.x"}
	clusters := map[string]*v1.Cluster{
		"store-1": importCluster(t, c, "retail", "store-1", workloads["store-1"].Kubeconfig(), v1.UpdateAutomatic, follow),
		"store-2": importCluster(t, c, "retail", "store-2", workloads["store-2"].Kubeconfig(), v1.UpdateAutomatic, follow),
		"store-3": importCluster(t, c, "retail", "store-3", workloads["store-3"].Kubeconfig(), "", follow),
	}
	kubeconfig := testenv.Kubeconfig(t, mgmt)
	v100 := live{hello: "1.1.1", spegel: true}
	waitFor(t, "every store on platform 1.0.0", func() (bool, string) {
		var states []string
		ok := true
		for name, cp := range workloads {
			l := liveOf(t, cp)
			got := getCluster(t, c, clusters[name])
			ok = ok && l == v100 && got.Status.Phase == v1.ClusterReady
			states = append(states, fmt.Sprintf("%s %+v %s", name, l, got.Status.Phase))
		}
		return ok, strings.Join(states, "; ")
	})

	// Version 1.1.0 is published; nobody edits a cluster.
	must(t, c.Create(ctx, platformProfile("1.1.0")))
	v110 := live{hello: "1.2.0", banner: true}
	waitFor(t, "the Automatic stores on 1.1.0, the Manual one waiting with the plan", func() (bool, string) {
		l1, l2 := liveOf(t, workloads["store-1"]), liveOf(t, workloads["store-2"])
		manual := getCluster(t, c, clusters["store-3"])
		waiting := manual.Status.PendingPlan != nil && apimeta.IsStatusConditionTrue(manual.Status.Conditions, v1.ConditionUpdatesAvailable)
		return l1 == v110 && l2 == v110 && waiting, fmt.Sprintf("store-1 %+v store-2 %+v store-3 plan %+v", l1, l2, manual.Status.PendingPlan)
	})
	for _, name := range []string{"store-1", "store-2"} {
		got := getCluster(t, c, clusters[name])
		want := []v1.ProfileStatus{{Name: "platform", Version: "1.1.0", Latest: "1.1.0", LastGood: "1.1.0"}}
		waitFor(t, name+" Ready on 1.1.0", func() (bool, string) {
			got = getCluster(t, c, clusters[name])
			return got.Status.Phase == v1.ClusterReady && reflect.DeepEqual(got.Status.Profiles, want), fmt.Sprintf("%s %+v", got.Status.Phase, got.Status.Profiles)
		})
		var layers []string
		for _, l := range got.Status.Layers {
			layers = append(layers, l.Name+"@"+l.Version+"="+l.Phase)
		}
		if strings.Join(layers, " ") != "hello-universe@1.2.0=Ready banner@=Ready" {
			t.Errorf("%s layers: %v", name, layers)
		}
	}

	// Each layer's action is an event of its own on the cluster.
	waitFor(t, "an event for each layer store-1 changed", func() (bool, string) {
		var events eventsv1.EventList
		must(t, c.List(ctx, &events, client.InNamespace("retail")))
		var notes []string
		for _, e := range events.Items {
			if e.Regarding.Name == "store-1" && e.Reason != "LayerReady" && strings.HasPrefix(e.Reason, "Layer") {
				notes = append(notes, e.Reason+" "+e.Note)
			}
		}
		slices.Sort(notes)
		got := strings.Join(notes, "\n")
		want := []string{
			"LayerInstalling layer banner: install new layer", "LayerInstalling layer hello-universe: install new layer",
			"LayerInstalling layer spegel: install new layer", "LayerRemoved layer spegel: removed in",
			"LayerRemoving layer spegel: remove no longer in the stack", "LayerUpgrading layer hello-universe: upgrade version 1.1.1 → 1.2.0",
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				return false, got
			}
		}
		return true, got
	})

	// The Manual store still runs 1.0.0, and its plan is exactly the change.
	if l := liveOf(t, workloads["store-3"]); l != v100 {
		t.Fatalf("the Manual store changed before approval: %+v", l)
	}
	manual := getCluster(t, c, clusters["store-3"])
	if want := []v1.ProfileStatus{{Name: "platform", Version: "1.0.0", Latest: "1.1.0", LastGood: "1.0.0"}}; !reflect.DeepEqual(manual.Status.Profiles, want) {
		t.Errorf("store-3 profiles %+v, want %+v", manual.Status.Profiles, want)
	}
	if manual.Status.UpdatePolicy != v1.UpdateManual {
		t.Errorf("store-3 update policy %q, want Manual from platform 1.1.0", manual.Status.UpdatePolicy)
	}
	var planned []string
	for _, l := range manual.Status.PendingPlan.Layers {
		planned = append(planned, fmt.Sprintf("%s %s %s>%s", l.Name, l.Action, l.FromVersion, l.ToVersion))
	}
	slices.Sort(planned)
	if got, want := strings.Join(planned, "; "), "banner install >; hello-universe upgrade 1.1.1>1.2.0; spegel remove 0.0.18>"; got != want {
		t.Errorf("pending plan %q, want %q", got, want)
	}
	plan := strataCLI(t, kubeconfig, "retail", "cluster", "plan", "store-3")
	for _, want := range []string{"1 to install, 1 to upgrade, 1 to remove", "banner: install", "hello-universe: upgrade", "spegel: remove"} {
		if !strings.Contains(plan, want) {
			t.Errorf("strata cluster plan lacks %q:\n%s", want, plan)
		}
	}
	if table := strataCLI(t, kubeconfig, "retail", "get", "clusters"); !strings.Contains(table, "platform@1.0.0 (1.x) [1.1.0 published]") {
		t.Errorf("strata get clusters:\n%s", table)
	}

	strataCLI(t, kubeconfig, "retail", "cluster", "approve", "store-3")
	waitFor(t, "the Manual store on 1.1.0 after approval", func() (bool, string) {
		l := liveOf(t, workloads["store-3"])
		got := getCluster(t, c, clusters["store-3"])
		return l == v110 && got.Status.PendingPlan == nil && got.Status.Phase == v1.ClusterReady, fmt.Sprintf("%+v %+v", l, got.Status.PendingPlan)
	})
	// The spegel namespace went with its layer.
	cs, err := workloads["store-3"].Clientset()
	must(t, err)
	waitFor(t, "spegel-system removed", func() (bool, string) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "spegel-system", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
