package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/testenv"
)

func helloProfile(version, replicas string) *v1.ClusterProfile {
	return &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-" + version, Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{
			Name: "hello", Version: version, Type: v1.ProfileAddOn,
			Variables: []v1.Variable{{Name: "replicas", Format: v1.FormatNumber, Default: replicas}},
			Layers: []v1.Layer{{
				Name: "hello-universe", Kind: v1.LayerAddon,
				Pack:   &v1.PackSource{Name: "hello-universe", Version: "1.2.0"},
				Values: "manifests:\n  hello-universe:\n    replicas: {{.spectro.var.replicas}}\n",
			}},
		},
	}
}

// A Cluster on the management plane follows its profile on a real workload
// cluster: it converges, moves to a new profile version, and on deletion
// its layers are removed before the Cluster goes.
func TestClusterFollowsItsProfile(t *testing.T) {
	t.Parallel()
	_, c := managementPlane(t, 0, controller.SharedNamespace, "team-a")
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	ctx := context.Background()
	must(t, c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "edge-kubeconfig", Namespace: "team-a"},
		Data:       map[string][]byte{"kubeconfig": workload.Kubeconfig()},
	}))
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	cluster := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "team-a"},
		Spec: v1.ClusterSpec{
			KubeconfigSecretRef: &v1.SecretKeyRef{Name: "edge-kubeconfig"},
			Profiles:            []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
		},
	}
	must(t, c.Create(ctx, cluster))

	ws := kubernetes.NewForConfigOrDie(workload.RESTConfig())
	waitFor(t, "cluster Ready with the hello-universe layer", func() (bool, string) {
		got := &v1.Cluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(cluster), got); err != nil {
			return false, err.Error()
		}
		ok := got.Status.Phase == v1.ClusterReady && len(got.Status.Layers) == 1 && got.Status.Layers[0].Phase == "Ready" && got.Status.ObservedGeneration == got.Generation
		return ok, fmt.Sprintf("%+v", got.Status)
	})
	dep, err := ws.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 1 {
		t.Fatalf("workload deployment: %v", err)
	}

	// A new profile version; the cluster moves to it.
	must(t, c.Create(ctx, helloProfile("1.1.0", "2")))
	must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), cluster))
	patch := client.MergeFrom(cluster.DeepCopy())
	cluster.Spec.Profiles[0].Version = "1.1.0"
	must(t, c.Patch(ctx, cluster, patch))
	waitFor(t, "workload deployment at 2 replicas", func() (bool, string) {
		dep, err := ws.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *dep.Spec.Replicas == 2 && dep.Status.ReadyReplicas == 2, fmt.Sprintf("replicas %d ready %d", *dep.Spec.Replicas, dep.Status.ReadyReplicas)
	})
	waitFor(t, "status showing profile 1.1.0", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), got))
		return len(got.Status.Layers) == 1 && got.Status.Layers[0].ProfileVersion == "1.1.0" && got.Status.Phase == v1.ClusterReady, fmt.Sprintf("%+v", got.Status.Layers)
	})

	// Secrets never reach the status.
	got := &v1.Cluster{}
	must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), got))
	for _, cond := range got.Status.Conditions {
		if strings.Contains(cond.Message, "BEGIN") || strings.Contains(cond.Message, "client-key") {
			t.Errorf("condition %s leaks the kubeconfig", cond.Type)
		}
	}

	// Deleting the Cluster removes its layers first.
	must(t, c.Delete(ctx, cluster))
	waitFor(t, "cluster gone and its layers removed", func() (bool, string) {
		err := c.Get(ctx, client.ObjectKeyFromObject(cluster), &v1.Cluster{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("cluster still there: %v", err)
		}
		_, err = ws.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("deployment: %v", err)
	})
}

// A cluster whose stack is invalid, or whose credentials are missing, says
// so in its status and applies nothing.
func TestClusterReportsWhatStopsIt(t *testing.T) {
	t.Parallel()
	_, c := managementPlane(t, 0, "team-b")
	ctx := context.Background()
	cluster := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "nocreds", Namespace: "team-b"},
		Spec:       v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}}},
	}
	must(t, c.Create(ctx, cluster))
	waitFor(t, "Stalled condition naming the missing kubeconfig", func() (bool, string) {
		got := &v1.Cluster{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(cluster), got))
		for _, cond := range got.Status.Conditions {
			if cond.Type == v1.ConditionStalled && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, "kubeconfigSecretRef is not set") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", got.Status.Conditions)
	})

	// Profiles are validated as `strata profile validate` does.
	good, bad, warned := helloProfile("1.0.0", "1"), helloProfile("2.0.0", "1"), helloProfile("3.0.0", "1")
	good.Namespace, bad.Namespace, warned.Namespace = "team-b", "team-b", "team-b"
	bad.Spec.Layers[0].Pack.Version = "9.9.9"
	// kubewatch keeps its chart values right under charts: a warning, still valid.
	warned.Spec.Layers[0] = v1.Layer{Name: "kubewatch", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "kubewatch", Version: "1.0.7"}}
	must(t, c.Create(ctx, good))
	must(t, c.Create(ctx, bad))
	must(t, c.Create(ctx, warned))
	for p, want := range map[*v1.ClusterProfile]string{
		good:   "True: the profile resolves",
		bad:    `False: clusterprofile team-b/hello-2.0.0: profile "hello" 2.0.0: spec.layers[0].pack: pack hello-universe 9.9.9 not found in the pack folders given`,
		warned: "True: the profile resolves with the packs the manager has\nwarning: ../../../shared/testdata/pack-central/kubewatch-1.0.7/values.yaml: pack kubewatch-1.0.7: charts: no charts.kubewatch section",
	} {
		waitFor(t, "Valid condition of "+p.Name, func() (bool, string) {
			got := &v1.ClusterProfile{}
			must(t, c.Get(ctx, client.ObjectKeyFromObject(p), got))
			cond := apimeta.FindStatusCondition(got.Status.Conditions, controller.ConditionValid)
			return cond != nil && strings.HasPrefix(string(cond.Status)+": "+cond.Message, want), fmt.Sprintf("%+v", cond)
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	waitUntil(t, what, 2*time.Minute, cond)
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.WaitUntil(t, what, timeout, cond)
}

// A profile version that a cluster uses is not deleted until no cluster
// uses it; the profile says which clusters hold it.
func TestProfileInUseIsProtected(t *testing.T) {
	t.Parallel()
	_, c := managementPlane(t, 0, controller.SharedNamespace, "team-c")
	ctx := context.Background()
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	cluster := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "holder", Namespace: "team-c", Annotations: map[string]string{controller.OrphanAnnotation: "true"}},
		Spec:       v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}}},
	}
	must(t, c.Create(ctx, cluster))
	key := client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.0.0"}
	waitFor(t, "the in-use finalizer", func() (bool, string) {
		p := &v1.ClusterProfile{}
		must(t, c.Get(ctx, key, p))
		return len(p.Finalizers) == 1, fmt.Sprint(p.Finalizers)
	})
	p := &v1.ClusterProfile{}
	must(t, c.Get(ctx, key, p))
	must(t, c.Delete(ctx, p))
	waitFor(t, "deletion blocked naming the cluster", func() (bool, string) {
		p := &v1.ClusterProfile{}
		if err := c.Get(ctx, key, p); err != nil {
			return false, "profile deleted: " + err.Error()
		}
		cond := apimeta.FindStatusCondition(p.Status.Conditions, controller.ConditionInUse)
		return cond != nil && strings.Contains(cond.Message, "used by clusters team-c/holder"), fmt.Sprintf("%+v", cond)
	})
	must(t, c.Delete(ctx, cluster))
	waitFor(t, "the profile gone once unused", func() (bool, string) {
		err := c.Get(ctx, key, &v1.ClusterProfile{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
