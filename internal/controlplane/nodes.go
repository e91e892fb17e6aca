package controlplane

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// fakeNodeAnnotation marks the nodes kwok simulates; kwok manages only them.
const fakeNodeAnnotation = "kwok.x-k8s.io/node"

// nodePrefix names the simulated nodes: <prefix>0, <prefix>1, ...
const nodePrefix = "node-"

// SetNodes scales the simulated nodes to n: it adds missing nodes and removes
// the highest-numbered extra ones, then waits until all n are Ready.
func (cp *ControlPlane) SetNodes(ctx context.Context, n int) error {
	cs, err := cp.Clientset()
	if err != nil {
		return err
	}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	existing := map[string]bool{}
	var extra []string
	for _, node := range list.Items {
		if node.Annotations[fakeNodeAnnotation] != "fake" {
			continue
		}
		existing[node.Name] = true
		var idx int
		if _, err := fmt.Sscanf(strings.TrimPrefix(node.Name, nodePrefix), "%d", &idx); err != nil || idx >= n {
			extra = append(extra, node.Name)
		}
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s%d", nodePrefix, i)
		if existing[name] {
			continue
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, fakeNode(name, cp.opts.Binaries.Version), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete node %s: %w", name, err)
		}
	}
	return cp.waitNodesReady(ctx, n)
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

// fakeNode is a node kwok will bring to Ready. It carries the labels real
// kubelets set, or pods with node selectors (CNI daemonsets) stay Pending.
func fakeNode(name, kubeletVersion string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
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
	}
}
