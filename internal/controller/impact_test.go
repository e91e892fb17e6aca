package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/testenv"
)

// A draft's impact on the live fleet, in its status: the clusters that
// would change with the right actions, the one whose value the draft's
// new rule refuses (naming it), the one the manager never reached as not
// known, the one pinned to the old version left out — and nothing
// changed on any cluster meanwhile. Once published, exactly the two move;
// the refusing one keeps its version, Ready, and says why.
func TestADraftsImpactOnTheFleet(t *testing.T) {
	t.Parallel()
	mgmt, c := managementPlane(t, 0, controller.SharedNamespace, "edge")
	ctx := context.Background()
	old := helloProfile("1.0.0", "1")
	old.Spec.Layers = append(old.Spec.Layers, v1.Layer{Name: "config", Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello-config, namespace: default}\n"}})
	must(t, c.Create(ctx, old))
	follows := func(replicas string) v1.ProfileAttachment {
		return v1.ProfileAttachment{Name: "hello", Version: "1.x", Variables: []v1.VariableValue{{Name: "replicas", Value: replicas}}}
	}
	w1 := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	w2 := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	w4 := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	store1 := importCluster(t, c, "edge", "store-1", w1.Kubeconfig(), v1.UpdateAutomatic, follows("2"))
	store2 := importCluster(t, c, "edge", "store-2", w2.Kubeconfig(), v1.UpdateAutomatic, follows("5"))
	store4 := importCluster(t, c, "edge", "store-4", w4.Kubeconfig(), v1.UpdateAutomatic, follows("3"))
	// Two the manager cannot reach (no credentials): one following 1.x,
	// one pinned to 1.0.0.
	for name, a := range map[string]v1.ProfileAttachment{"store-3": follows("1"), "pinned": {Name: "hello", Version: "1.0.0"}} {
		must(t, c.Create(ctx, &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "edge"}, Spec: v1.ClusterSpec{
			KubeconfigSecretRef: &v1.SecretKeyRef{Name: "no-such-secret"}, Profiles: []v1.ProfileAttachment{a},
		}}))
	}
	for _, cl := range []*v1.Cluster{store1, store2, store4} {
		waitFor(t, cl.Name+" Ready on 1.0.0", func() (bool, string) {
			v, ready := runsVersion(t, c, cl)
			return v == "1.0.0" && ready, v
		})
	}
	// Each workload cluster's Helm releases, to see that a preview changes
	// none and publishing changes only those that take the version.
	releases := func(w *controlplane.ControlPlane) string {
		cs, err := w.Clientset()
		must(t, err)
		list, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
		must(t, err)
		var out []string
		for _, s := range list.Items {
			out = append(out, s.Name+"@"+s.ResourceVersion)
		}
		return strings.Join(out, ",")
	}
	before := releases(w1) + ";" + releases(w2) + ";" + releases(w4)

	draft := helloProfile("1.1.0", "1")
	draft.Spec.Draft = true
	draft.Spec.Variables[0].Regex = "^[1-3]$"
	draft.Spec.Layers[0].Values += "    port: 8081\n"
	must(t, c.Create(ctx, draft))
	stored := &v1.ClusterProfile{}
	waitFor(t, "the draft's impact", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(draft), stored))
		im := stored.Status.Impact
		return im != nil && im.ObservedGeneration == stored.Generation && im.Summary == v1.ImpactSummary{Change: 2, Refused: 1, Unknown: 1}, fmt.Sprintf("%+v", im)
	})
	outcome := map[string]v1.ClusterImpact{}
	for _, ci := range stored.Status.Impact.Clusters {
		outcome[ci.Name] = ci
	}
	if len(outcome) != 4 {
		t.Errorf("clusters listed %v, want store-1 to store-4 (not the pinned one)", outcome)
	}
	for _, name := range []string{"store-1", "store-4"} {
		actions := map[string]string{}
		for _, l := range outcome[name].Layers {
			actions[l.Name] = l.Action
			if l.Name == "hello-universe" && !l.ValuesChanged {
				t.Errorf("%s: hello-universe's values change, the impact says not", name)
			}
		}
		if outcome[name].From != "1.0.0" || actions["hello-universe"] != "upgrade" || actions["config"] != "remove" {
			t.Errorf("%s: %+v", name, outcome[name])
		}
	}
	if r := outcome["store-2"].Refused; !strings.Contains(r, "replicas") || !strings.Contains(r, `"5"`) {
		t.Errorf("store-2 refused %q, want the variable and its value named", r)
	}
	if !strings.Contains(outcome["store-3"].Unknown, "not known") {
		t.Errorf("store-3: %+v, want not known", outcome["store-3"])
	}
	if after := releases(w1) + ";" + releases(w2) + ";" + releases(w4); after != before {
		t.Errorf("Helm releases changed while previewing: %s → %s", before, after)
	}
	out := strataCLI(t, testenv.Kubeconfig(t, mgmt), controller.SharedNamespace, "profile", "preview", "hello", "1.1.0")
	if !strings.Contains(out, "hello 1.1.0: 2 would change, 0 unchanged, 1 would refuse, 1 not known") || !strings.Contains(out, "edge/store-1") {
		t.Errorf("strata profile preview:\n%s", out)
	}

	// A draft whose new layer needs an API the clusters do not serve: the
	// clusters the manager is connected to refuse it, naming the kind.
	monitored := helloProfile("1.2.0", "1")
	monitored.Spec.Draft = true
	monitored.Spec.Layers = append(monitored.Spec.Layers, v1.Layer{Name: "monitor", Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{
		Inline: "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: hello, namespace: default}\nspec: {endpoints: [{port: http}]}\n",
	}})
	must(t, c.Create(ctx, monitored))
	waitFor(t, "1.2.0 refused for the API", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(monitored), stored))
		im := stored.Status.Impact
		return im != nil && im.ObservedGeneration == stored.Generation && im.Summary == v1.ImpactSummary{Refused: 3, Unknown: 1}, fmt.Sprintf("%+v", im)
	})
	for _, ci := range stored.Status.Impact.Clusters {
		if ci.Name == "store-1" && (!strings.Contains(ci.Refused, "layer monitor") || !strings.Contains(ci.Refused, "ServiceMonitor") || !strings.Contains(ci.Refused, "not served")) {
			t.Errorf("store-1 refuses 1.2.0 with %q, want the layer and the kind the cluster does not serve", ci.Refused)
		}
	}
	must(t, c.Delete(ctx, monitored))

	// Published: the impact is gone, the two changing clusters move, and
	// the refusing one keeps running 1.0.0, saying why it does not move.
	refusingBefore := releases(w2)
	strataCLI(t, testenv.Kubeconfig(t, mgmt), controller.SharedNamespace, "profile", "publish", "hello", "1.1.0")
	for _, cl := range []*v1.Cluster{store1, store4} {
		waitFor(t, cl.Name+" on 1.1.0", func() (bool, string) {
			v, ready := runsVersion(t, c, cl)
			return v == "1.1.0" && ready, v
		})
	}
	waitFor(t, "store-2 saying it keeps 1.0.0", func() (bool, string) {
		got := getCluster(t, c, store2)
		refusal := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionVersionRefused)
		return refusal != nil && refusal.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", got.Status.Conditions)
	})
	got := getCluster(t, c, store2)
	if v, ready := runsVersion(t, c, store2); v != "1.0.0" || !ready {
		t.Errorf("store-2 runs %q (Ready %v), want 1.0.0 Ready", v, ready)
	}
	if refusal := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionVersionRefused); !strings.Contains(refusal.Message, "hello 1.1.0 is not taken, 1.0.0 stays") || !strings.Contains(refusal.Message, "replicas") {
		t.Errorf("store-2's VersionRefused says %q, want the version kept, the one refused and the variable", refusal.Message)
	}
	if p := got.Status.Profiles[0]; p.Version != "1.0.0" || p.Latest != "1.1.0" || p.Refused == nil || p.Refused.Version != "1.1.0" || !strings.Contains(p.Refused.Reason, "replicas") {
		t.Errorf("store-2's status.profiles %+v, want 1.0.0 running and 1.1.0 refused naming the variable", p)
	}
	if out := strataCLI(t, testenv.Kubeconfig(t, mgmt), "edge", "get", "clusters"); !strings.Contains(out, "hello@1.0.0 (1.x) [1.1.0 refused]") {
		t.Errorf("strata get clusters does not show store-2 keeping 1.0.0 and refusing 1.1.0:\n%s", out)
	}
	if after := releases(w2); after != refusingBefore {
		t.Errorf("store-2's Helm releases changed although it refuses 1.1.0: %s → %s", refusingBefore, after)
	}
	waitFor(t, "the impact cleared", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(draft), stored))
		return stored.Status.Impact == nil, fmt.Sprintf("%+v", stored.Status.Impact)
	})
}
