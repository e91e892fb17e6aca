package capilocal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/provider/capilocal"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/testenv"
)

// bed is a management plane running Cluster API's own manager and
// Strata's local providers, with the `local` ClusterClass applied.
type bed struct {
	c     client.Client
	local *local.Provider
}

func startBed(t *testing.T) *bed {
	t.Helper()
	cfg := testenv.Management(t, "../../../config/crd/bases")
	capiBed := testenv.StartClusterAPI(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: capilocal.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return &bed{c: c, local: capiBed.Local}
}

func capiObject(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(capilocal.CAPI.WithKind(kind))
	return u
}

func capiList(t *testing.T, c client.Client, kind, namespace, cluster string) []unstructured.Unstructured {
	t.Helper()
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(capilocal.CAPI.WithKind(kind + "List"))
	if err := c.List(context.Background(), l, client.InNamespace(namespace), client.MatchingLabels{capilocal.ClusterNameLabel: cluster}); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// topologyCluster is a Cluster API Cluster of the local class.
func topologyCluster(namespace, name, version string, workers int64) *unstructured.Unstructured {
	u := capiObject("Cluster")
	u.SetNamespace(namespace)
	u.SetName(name)
	u.Object["spec"] = map[string]any{
		"topology": map[string]any{
			"classRef":     map[string]any{"name": "local", "namespace": "strata-system"},
			"version":      version,
			"controlPlane": map[string]any{"replicas": int64(1)},
			"workers": map[string]any{"machineDeployments": []any{
				map[string]any{"class": "default-worker", "name": "workers", "replicas": workers},
			}},
		},
	}
	return u
}

// workload reaches the workload cluster the way Cluster API does: through
// the kubeconfig Secret its control plane wrote.
func (b *bed) workload(t *testing.T, namespace, cluster string) *kubernetes.Clientset {
	t.Helper()
	return testenv.WorkloadClient(t, b.c, namespace, cluster+"-kubeconfig", "value")
}

// runningWorkers waits until the cluster has n worker Machines Running, each
// with a nodeRef naming a Ready node of the workload cluster whose provider
// ID is the Machine's, and returns the node names.
func (b *bed) runningWorkers(t *testing.T, namespace, cluster string, n int) []string {
	t.Helper()
	var nodes []string
	testenv.WaitUntil(t, fmt.Sprintf("%d worker Machines Running with their nodes", n), 3*time.Minute, func() (bool, string) {
		machines := capiList(t, b.c, "Machine", namespace, cluster)
		nodes = nodes[:0]
		var seen []string
		for _, m := range machines {
			phase, _, _ := unstructured.NestedString(m.Object, "status", "phase")
			node, _, _ := unstructured.NestedString(m.Object, "status", "nodeRef", "name")
			seen = append(seen, m.GetName()+"="+phase+"/"+node)
			if phase == "Running" && node != "" {
				nodes = append(nodes, node)
			}
		}
		if len(machines) != n || len(nodes) != n {
			return false, strings.Join(seen, ", ")
		}
		cs := b.workload(t, namespace, cluster)
		for _, m := range machines {
			name, _, _ := unstructured.NestedString(m.Object, "status", "nodeRef", "name")
			node, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			want, _, _ := unstructured.NestedString(m.Object, "spec", "providerID")
			if node.Spec.ProviderID != want {
				return false, fmt.Sprintf("node %s has provider ID %q, its Machine %q", name, node.Spec.ProviderID, want)
			}
		}
		return true, ""
	})
	slices.Sort(nodes)
	return nodes
}

func TestALocalClassClusterIsProvisionedScaledAndDeleted(t *testing.T) {
	b := startBed(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	if err := b.c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	cluster := topologyCluster("team-a", "dev", "v1.37.2", 2)
	if err := b.c.Create(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the Cluster API Cluster Provisioned and Available", 3*time.Minute, func() (bool, string) {
		u := capiObject("Cluster")
		if err := b.c.Get(ctx, client.ObjectKeyFromObject(cluster), u); err != nil {
			return false, err.Error()
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		available := condition(u, "Available")
		return phase == "Provisioned" && available == "True", "phase " + phase + ", Available " + available
	})
	before := b.runningWorkers(t, "team-a", "dev", 2)

	// Scale 2 → 3: one more Machine, its node in the workload cluster.
	setReplicas(t, b.c, cluster, 3)
	after := b.runningWorkers(t, "team-a", "dev", 3)
	for _, n := range before {
		if !slices.Contains(after, n) {
			t.Errorf("scaling up replaced node %s: before %v, after %v", n, before, after)
		}
	}
	cs := b.workload(t, "team-a", "dev")
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Errorf("workload cluster has %d nodes, want the 3 of its Machines", len(nodes.Items))
	}

	// Delete: Machines, nodes, control plane processes and data all go.
	dataDirs, _ := filepath.Glob(filepath.Join(b.local.Root, "team-a", "*"))
	if len(dataDirs) != 1 {
		t.Fatalf("local control plane folders: %v", dataDirs)
	}
	if err := b.c.Delete(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, "the Cluster API Cluster gone", 3*time.Minute, func() (bool, string) {
		err := b.c.Get(ctx, client.ObjectKeyFromObject(cluster), capiObject("Cluster"))
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if left := capiList(t, b.c, "Machine", "team-a", "dev"); len(left) != 0 {
		t.Errorf("%d Machines left", len(left))
	}
	if _, err := os.Stat(dataDirs[0]); !os.IsNotExist(err) {
		t.Errorf("control plane data %s left behind: %v", dataDirs[0], err)
	}
	if _, err := cs.Discovery().ServerVersion(); err == nil {
		t.Error("the workload API server still answers after its cluster was deleted")
	}
}

func setReplicas(t *testing.T, c client.Client, cluster *unstructured.Unstructured, n int64) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"topology":{"workers":{"machineDeployments":[{"class":"default-worker","name":"workers","replicas":%d}]}}}}`, n)
	if err := c.Patch(context.Background(), cluster.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

func condition(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}
