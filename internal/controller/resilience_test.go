package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/testenv"
)

func inlineLayer(name, namespace, manifests string) v1.Layer {
	return v1.Layer{Name: name, Kind: v1.LayerAddon, Namespace: namespace, Manifests: &v1.ManifestSource{Inline: manifests}}
}

// deploymentOnNodes is a Deployment name in namespace name that runs only
// on nodes labelled key=value: with no such node, it never becomes
// available.
func deploymentOnNodes(name, key, value string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      nodeSelector: {%[2]s: %[3]q}
      containers: [{name: app, image: registry.k8s.io/pause:3.10}]
`, name, key, value)
}

// A layer the workload cluster refuses fails on its own: the cluster says
// which layer and why, and its other layers are installed and Ready.
func TestAFailingLayerLeavesTheOthersReady(t *testing.T) {
	t.Parallel()
	_, c := managementPlane(t, 0, controller.SharedNamespace, "lab")
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "lab", Nodes: 1})
	ctx := context.Background()
	p := helloProfile("1.0.0", "1")
	p.Spec.Layers = append(p.Spec.Layers, inlineLayer("broken", "broken", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Valid_Name, namespace: broken}\n"))
	must(t, c.Create(ctx, p))
	cluster := importCluster(t, c, "lab", "bench", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.0.0"})
	waitFor(t, "the broken layer Failed and hello-universe Ready", func() (bool, string) {
		got := getCluster(t, c, cluster)
		phases := map[string]v1.LayerStatus{}
		for _, l := range got.Status.Layers {
			phases[l.Name] = l
		}
		ready := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady)
		ok := got.Status.Phase == v1.ClusterFailed && phases["hello-universe"].Phase == "Ready" && phases["broken"].Phase == "Failed" &&
			strings.Contains(phases["broken"].Message, "Not_A_Valid_Name") &&
			ready != nil && ready.Reason == "LayersFailed" && strings.Contains(ready.Message, "layer broken Failed")
		return ok, fmt.Sprintf("%s %+v %+v", got.Status.Phase, got.Status.Layers, ready)
	})
	if got := liveOf(t, workload); got.hello != "1.2.0" {
		t.Errorf("hello-universe not running next to the broken layer: %+v", got)
	}

	// A project sees its own profiles and the shared ones, never another
	// project's: a cluster of lab cannot use a profile of project other.
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}))
	private := helloProfile("1.0.0", "1")
	private.Name, private.Namespace, private.Spec.Name = "private-1.0.0", "other", "private"
	must(t, c.Create(ctx, private))
	nosy := importCluster(t, c, "lab", "nosy", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "private", Version: "1.0.0"})
	waitFor(t, "the other project's profile not found", func() (bool, string) {
		cond := apimeta.FindStatusCondition(getCluster(t, c, nosy).Status.Conditions, v1.ConditionStalled)
		return cond != nil && cond.Reason == "InvalidStack" && strings.Contains(cond.Message, `profile "private": no version 1.0.0 found`), fmt.Sprintf("%+v", cond)
	})
}

// throughProxy rewrites a kubeconfig to reach its server through the proxy.
func throughProxy(t *testing.T, kubeconfig []byte) ([]byte, *testenv.Proxy) {
	cfg, err := clientcmd.Load(kubeconfig)
	must(t, err)
	var p *testenv.Proxy
	for _, cl := range cfg.Clusters {
		p = testenv.StartProxy(t, strings.TrimPrefix(cl.Server, "https://"))
		cl.Server = "https://" + p.Addr
	}
	out, err := clientcmd.Write(*cfg)
	must(t, err)
	return out, p
}

// A cluster that cannot be reached says so and is retried with a backoff,
// without holding back the others; once reachable again it converges with
// nobody touching it.
func TestUnreachableClusterRecovers(t *testing.T) {
	t.Parallel()
	_, c := managementPlane(t, 0, controller.SharedNamespace, "branch")
	ctx := context.Background()
	nearCP := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "near", Nodes: 1})
	farCP := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "far", Nodes: 1})
	farKubeconfig, link := throughProxy(t, farCP.Kubeconfig())
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	hello := v1.ProfileAttachment{Name: "hello", Version: "1.0.0"}
	near := importCluster(t, c, "branch", "near", nearCP.Kubeconfig(), v1.UpdateAutomatic, hello)
	far := importCluster(t, c, "branch", "far", farKubeconfig, v1.UpdateAutomatic, hello)
	waitFor(t, "both clusters Ready", func() (bool, string) {
		n, f := getCluster(t, c, near), getCluster(t, c, far)
		return n.Status.Phase == v1.ClusterReady && f.Status.Phase == v1.ClusterReady, fmt.Sprintf("near %s far %s", n.Status.Phase, f.Status.Phase)
	})

	link.Cut()
	setHelloReplicas(t, c, "2")
	waitFor(t, "near at 2 replicas while far is unreachable", func() (bool, string) {
		f := getCluster(t, c, far)
		stalled := apimeta.FindStatusCondition(f.Status.Conditions, v1.ConditionStalled)
		n := readyReplicas(nearCP.Clientset)
		return n == 2 && stalled != nil && stalled.Status == metav1.ConditionTrue && stalled.Reason == "ClusterUnreachable",
			fmt.Sprintf("near %d, far %+v", n, stalled)
	})
	if f := getCluster(t, c, far); strings.Contains(apimeta.FindStatusCondition(f.Status.Conditions, v1.ConditionStalled).Message, "BEGIN") {
		t.Error("the unreachable condition quotes the kubeconfig")
	}

	link.Restore(t)
	waitFor(t, "far back and at 2 replicas, untouched", func() (bool, string) {
		f := getCluster(t, c, far)
		n := readyReplicas(farCP.Clientset)
		return n == 2 && f.Status.Phase == v1.ClusterReady && !apimeta.IsStatusConditionTrue(f.Status.Conditions, v1.ConditionStalled),
			fmt.Sprintf("far %d %s %+v", n, f.Status.Phase, f.Status.Conditions)
	})
}

// The manager stopped while a layer waits to become Ready leaves the
// rollout to the next manager, which finishes it: every layer Ready, each
// Helm release installed once, nothing reinstalled.
func TestManagerRestartMidRolloutFinishesTheJob(t *testing.T) {
	t.Parallel()
	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "depot")
	stop := startManager(t, mgmt, 0)
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "depot", Nodes: 1})
	cs, err := workload.Clientset()
	must(t, err)
	ctx := context.Background()
	// "gated" runs only on nodes of pool "late", which no node is yet: its
	// layer waits for readiness until a node joins that pool.
	gated := deploymentOnNodes("gated", "strata.dev/pool", "late")
	p := helloProfile("1.0.0", "1")
	p.Spec.Layers = append(p.Spec.Layers,
		inlineLayer("gated", "gated", gated),
		v1.Layer{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.18"}})
	must(t, c.Create(ctx, p))
	cluster := importCluster(t, c, "depot", "depot", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.0.0"})

	waitFor(t, "the rollout waiting on the gated layer", func() (bool, string) {
		cm, err := cs.CoreV1().ConfigMaps(engine.InventoryNamespace).Get(ctx, "stack-depot", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		var inv engine.Inventory
		must(t, json.Unmarshal([]byte(cm.Data["inventory.json"]), &inv))
		_, ok := inv.Layer("gated")
		return ok, cm.Data["inventory.json"]
	})
	stop()
	if _, err := cs.AppsV1().DaemonSets("spegel-system").Get(ctx, "spegel", metav1.GetOptions{}); err == nil {
		t.Fatal("spegel was installed before the gated layer was Ready")
	}
	// While no manager runs, a node joins pool "late".
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	must(t, err)
	_, err = cs.CoreV1().Nodes().Patch(ctx, nodes.Items[0].Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"strata.dev/pool":"late"}}}`), metav1.PatchOptions{})
	must(t, err)

	startManager(t, mgmt, 0)
	waitFor(t, "every layer Ready under the new manager", func() (bool, string) {
		got := getCluster(t, c, cluster)
		var phases []string
		for _, l := range got.Status.Layers {
			phases = append(phases, l.Name+"="+l.Phase)
		}
		return got.Status.Phase == v1.ClusterReady && strings.Join(phases, " ") == "hello-universe=Ready gated=Ready spegel=Ready", strings.Join(phases, " ")
	})
	// One release record per layer, at revision 1, deployed.
	secrets, err := cs.CoreV1().Secrets(engine.InventoryNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	must(t, err)
	var records []string
	for _, s := range secrets.Items {
		records = append(records, s.Labels["name"]+" v"+s.Labels["version"]+" "+s.Labels["status"])
	}
	slices.Sort(records)
	if got, want := strings.Join(records, "; "), "gated v1 deployed; hello-universe v1 deployed; spegel v1 deployed"; got != want {
		t.Errorf("Helm release records %q, want %q", got, want)
	}
}

// readyReplicas of the hello-universe deployment, -1 when it cannot be read.
func readyReplicas(clientset func() (*kubernetes.Clientset, error)) int32 {
	cs, err := clientset()
	if err != nil {
		return -1
	}
	d, err := cs.AppsV1().Deployments("hello-universe").Get(context.Background(), "hello-universe-deployment", metav1.GetOptions{})
	if err != nil {
		return -1
	}
	return d.Status.ReadyReplicas
}
