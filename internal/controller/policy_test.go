package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/testenv"
)

// Two clusters share a profile; it is edited in place. The Automatic one
// converges at once; the Manual one shows the exact plan, converges only
// after `strata cluster approve`.
func TestManualClustersWaitForApproval(t *testing.T) {
	t.Parallel()
	mgmt, c := managementPlane(t, 0, controller.SharedNamespace, "shop")
	auto := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "auto", Nodes: 1})
	manual := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "manual", Nodes: 1})
	ctx := context.Background()
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	for name, wc := range map[string][]byte{"auto": auto.Kubeconfig(), "manual": manual.Kubeconfig()} {
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Data: map[string][]byte{"kubeconfig": wc}}))
		policy := v1.UpdateAutomatic
		if name == "manual" {
			policy = v1.UpdateManual
		}
		must(t, c.Create(ctx, &v1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec: v1.ClusterSpec{
				KubeconfigSecretRef: &v1.SecretKeyRef{Name: name}, UpdatePolicy: policy,
				Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
			},
		}))
	}
	replicas := func(cp *controlplane.ControlPlane) int32 { return readyReplicas(cp.Clientset) }
	// The first install of a Manual cluster is a change too: approve it.
	// Until then nothing runs, and the cluster says so: Pending, not Ready.
	waitFor(t, "manual cluster's first plan", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "manual"}, got))
		ready := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady)
		pending := got.Status.PendingPlan != nil && got.Status.Phase == v1.ClusterPending && ready != nil &&
			ready.Status == metav1.ConditionFalse && ready.Reason == "AwaitingApproval"
		return pending, fmt.Sprintf("%s %+v", got.Status.Phase, got.Status.Conditions)
	})
	kubeconfig := testenv.Kubeconfig(t, mgmt)
	strata := func(args ...string) string { return strataCLI(t, kubeconfig, "shop", args...) }
	if out := strata("cluster", "plan", "manual"); !strings.Contains(out, "1 to install") || !strings.Contains(out, "hello-universe: install") {
		t.Fatalf("plan:\n%s", out)
	}
	strata("cluster", "approve", "manual")
	waitFor(t, "both clusters run 1 replica", func() (bool, string) {
		a, m := replicas(auto), replicas(manual)
		return a == 1 && m == 1, fmt.Sprintf("auto %d manual %d", a, m)
	})

	// The profile version is edited in place: 2 replicas.
	setHelloReplicas(t, c, "2")

	waitFor(t, "the Automatic cluster at 2 replicas, the Manual one waiting", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "manual"}, got))
		// What runs is Ready while the update waits.
		waiting := apimeta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionUpdatesAvailable) && got.Status.PendingPlan != nil &&
			strings.Contains(got.Status.PendingPlan.Summary, "1 to upgrade") && got.Status.Phase == v1.ClusterReady
		return replicas(auto) == 2 && waiting, fmt.Sprintf("auto %d, manual plan %+v", replicas(auto), got.Status.PendingPlan)
	})
	if got := replicas(manual); got != 1 {
		t.Fatalf("the Manual cluster changed before approval: %d replicas", got)
	}
	plan := strata("cluster", "plan", "manual")
	if !strings.Contains(plan, "hello-universe: upgrade") || !strings.Contains(plan, "-    replicas: 1") || !strings.Contains(plan, "+    replicas: 2") {
		t.Fatalf("plan lacks the values diff:\n%s", plan)
	}
	if out := strata("describe", "cluster", "manual"); !strings.Contains(out, "Pending plan: 1 to upgrade") || !strings.Contains(out, "UpdatesAvailable") || !strings.Contains(out, "awaiting approval") {
		t.Errorf("describe cluster:\n%s", out)
	}
	out := strata("get", "clusters", "-o", "json")
	if !strings.Contains(out, `"name":"manual"`) || !strings.Contains(out, `"updatesAvailable":true`) {
		t.Errorf("get clusters -o json:\n%s", out)
	}

	strata("cluster", "approve", "manual")
	waitFor(t, "the Manual cluster at 2 replicas after approval", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "manual"}, got))
		return replicas(manual) == 2 && got.Status.PendingPlan == nil && !apimeta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionUpdatesAvailable),
			fmt.Sprintf("manual %d, pending %+v", replicas(manual), got.Status.PendingPlan)
	})
}

// A hand-made change is reported under drift policy Report and repaired
// under Repair — found at once by the watch on the workload cluster, long
// before the next periodic resync.
func TestDriftIsReportedOrRepaired(t *testing.T) {
	t.Parallel()
	_, c := managementPlane(t, time.Hour, controller.SharedNamespace, "ops")
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	ctx := context.Background()
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "ops"}, Data: map[string][]byte{"kubeconfig": workload.Kubeconfig()}}))
	cluster := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "watched", Namespace: "ops"},
		Spec: v1.ClusterSpec{
			KubeconfigSecretRef: &v1.SecretKeyRef{Name: "kc"}, DriftPolicy: v1.DriftReport,
			Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
		},
	}
	must(t, c.Create(ctx, cluster))
	cs, err := workload.Clientset()
	must(t, err)
	waitFor(t, "the cluster Ready", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), got))
		return got.Status.Phase == v1.ClusterReady, fmt.Sprintf("%+v", got.Status.Layers)
	})
	must(t, cs.AppsV1().Deployments("hello-universe").Delete(ctx, "hello-universe-deployment", metav1.DeleteOptions{}))

	waitFor(t, "drift reported", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), got))
		cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionDrifted)
		ok := cond != nil && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, "Deployment hello-universe/hello-universe-deployment is missing") &&
			len(got.Status.Layers) == 1 && got.Status.Layers[0].Phase == "Drifted"
		return ok, fmt.Sprintf("%+v %+v", cond, got.Status.Layers)
	})
	if _, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err == nil {
		t.Fatal("drift policy Report repaired the deployment")
	}

	must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), cluster))
	patch := client.MergeFrom(cluster.DeepCopy())
	cluster.Spec.DriftPolicy = v1.DriftRepair
	must(t, c.Patch(ctx, cluster, patch))
	waitFor(t, "drift repaired", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), got))
		_, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		return err == nil && !apimeta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionDrifted), fmt.Sprint(err)
	})

	// Someone scales the deployment by hand: it is put back at once.
	_, err = cs.AppsV1().Deployments("hello-universe").Patch(ctx, "hello-universe-deployment", types.MergePatchType,
		[]byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{FieldManager: "kubectl-edit"})
	must(t, err)
	waitFor(t, "the hand-scaled deployment back to 1 replica", func() (bool, string) {
		d, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas == 1, fmt.Sprintf("%d replicas", *d.Spec.Replicas)
	})
}
