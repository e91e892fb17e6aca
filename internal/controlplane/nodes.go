package controlplane

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// fakeNodeAnnotation marks the nodes kwok simulates; kwok manages only them.
const fakeNodeAnnotation = "kwok.x-k8s.io/node"

// PoolLabel on a simulated node names its pool.
const PoolLabel = "strata.dev/node-pool"

// NodePool is a group of simulated nodes named <Name>-0, <Name>-1, ...
// Each node offers CPU, Memory and Disk (quantities such as "32", "256Gi";
// empty for 32 CPUs, 256Gi of memory and 100Gi of disk). They apply to the
// nodes a pool creates.
type NodePool struct {
	Name              string
	Count             int
	CPU, Memory, Disk string
}

// SetNodes scales the simulated nodes to n in one pool, "node", and waits
// until all n are Ready.
func (cp *ControlPlane) SetNodes(ctx context.Context, n int) error {
	return cp.SetNodePools(ctx, []NodePool{{Name: "node", Count: n}})
}

// SetNodePools makes the simulated nodes those of the pools: it adds the
// missing nodes, removes those of pools or indexes no longer wanted, then
// waits until all are Ready.
func (cp *ControlPlane) SetNodePools(ctx context.Context, pools []NodePool) error {
	cs, err := cp.Clientset()
	if err != nil {
		return err
	}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	want := map[string]NodePool{} // node name → pool
	total := 0
	for _, p := range pools {
		for i := 0; i < p.Count; i++ {
			want[fmt.Sprintf("%s-%d", p.Name, i)] = p
		}
		total += p.Count
	}
	existing := map[string]bool{}
	var extra []string
	for _, node := range list.Items {
		if node.Annotations[fakeNodeAnnotation] != "fake" {
			continue
		}
		existing[node.Name] = true
		if _, ok := want[node.Name]; !ok {
			extra = append(extra, node.Name)
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if existing[name] {
			continue
		}
		node, err := FakeNode(name, want[name], cp.opts.Binaries.Version)
		if err != nil {
			return err
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete node %s: %w", name, err)
		}
	}
	return cp.waitNodesReady(ctx, total)
}

// releaseNodeLeases deletes the leases of the simulated nodes before kwok
// starts. kwok holds each node's lease under an identity of its own, new
// at every start: left in place, the leases of a kwok that is gone (a
// resumed or restarted control plane) keep the new one from running the
// nodes' pods until they expire. kwok creates them again at once.
func (cp *ControlPlane) releaseNodeLeases(ctx context.Context) error {
	cs, err := cp.Clientset()
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, node := range nodes.Items {
		if node.Annotations[fakeNodeAnnotation] != "fake" {
			continue
		}
		err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, node.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("release the lease of node %s: %w", node.Name, err)
		}
	}
	return nil
}

func (cp *ControlPlane) waitNodesReady(ctx context.Context, n int) error {
	cs, err := cp.Clientset()
	if err != nil {
		return err
	}
	var seen string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, cp.opts.StartTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			seen = err.Error()
			return false, nil
		}
		ready, total := 0, 0
		for _, node := range list.Items {
			if node.Annotations[fakeNodeAnnotation] != "fake" {
				continue
			}
			total++
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		seen = fmt.Sprintf("%d of %d nodes Ready", ready, total)
		return ready == n && total == n, nil
	})
	if err != nil {
		return fmt.Errorf("simulated nodes: want %d Ready: %w (seen: %s; kwok log: %s)", n, err, seen, cp.path("kwok.log"))
	}
	return nil
}

// FakeNode is a node kwok will bring to Ready. It carries the labels real
// kubelets set, or pods with node selectors (CNI daemonsets) stay Pending.
func FakeNode(name string, pool NodePool, kubeletVersion string) (*corev1.Node, error) {
	capacity := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	for res, q := range map[corev1.ResourceName][2]string{
		corev1.ResourceCPU:              {pool.CPU, "32"},
		corev1.ResourceMemory:           {pool.Memory, "256Gi"},
		corev1.ResourceEphemeralStorage: {pool.Disk, "100Gi"},
	} {
		v := q[0]
		if v == "" {
			v = q[1]
		}
		amount, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("node pool %s: %s %q: %w", pool.Name, res, v, err)
		}
		capacity[res] = amount
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{fakeNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
				"kubernetes.io/hostname": name,
				"type":                   "kwok",
				PoolLabel:                pool.Name,
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem: "linux",
				Architecture:    runtime.GOARCH,
				KubeletVersion:  kubeletVersion,
			},
		},
	}, nil
}
