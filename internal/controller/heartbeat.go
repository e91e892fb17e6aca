package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "strata.dev/strata/api/v1alpha1"
)

// An agent says it is alive by renewing a Lease of its own, as a kubelet
// does in kube-node-lease: a small object whose writes cost the API server
// little and reach only the manager's watch of agents' Leases. The
// Cluster's status is written only when what the agent reports changes.
// The manager makes the Lease and reads it; the agent package renews it.

// HeartbeatLabel marks an agent's Lease with the name of its Cluster, and
// HeartbeatNamespaceLabel with the Cluster's namespace; the manager's cache
// holds only Leases so labelled.
const (
	HeartbeatLabel          = "strata.dev/heartbeat-of"
	HeartbeatNamespaceLabel = "strata.dev/heartbeat-of-namespace"
)

// AgentLease names the Lease, in the agent's namespace (AgentNamespace),
// that its agent renews.
func AgentLease(cluster string) string { return "strata-agent-" + cluster }

// AgentNamespace names the namespace that holds an agent-mode cluster's
// Lease and the one RoleBinding that lets its agent renew it.
//
// Why a namespace of its own: the API server's RBAC authorizer has no index
// by subject. For each request in a namespace it walks that namespace's
// RoleBindings until one allows it, and every agent has a RoleBinding in
// its project's namespace. Renewals there cost in proportion to the agents
// in the project, and the fleet's renewals in proportion to its square:
// RBAC took 48 % of the API server's time at rest with 5,000 agents. In a
// namespace of its own a renewal is authorized by one RoleBinding,
// whatever the size of the fleet (as Open Cluster Management and Fleet
// give each managed cluster a namespace on the hub).
//
// The name is readable and unique: the cluster's namespace and name, cut
// to fit a namespace's 63 characters, and a hash of both (so that "a-b"/"c"
// and "a"/"b-c" differ).
func AgentNamespace(cluster types.NamespacedName) string {
	sum := sha256.Sum256([]byte(cluster.Namespace + "/" + cluster.Name))
	readable := strings.ReplaceAll(cluster.Namespace+"-"+cluster.Name, ".", "-")
	return "strata-agent-" + readable[:min(len(readable), 39)] + "-" + hex.EncodeToString(sum[:5])
}

// heartbeatLeases selects agents' Leases, for the manager's cache.
func heartbeatLeases() labels.Selector {
	req, _ := labels.NewRequirement(HeartbeatLabel, selection.Exists, nil) // a constant key: never fails
	return labels.NewSelector().Add(*req)
}

// agentLeaseObject is the Lease the manager makes for the agent of c, in
// the agent's namespace: metadata only, so applying it again never touches
// what the agent renews. It has no owner: an owner must be in the same
// namespace, and the Cluster is not; the manager deletes it with the
// namespace.
func agentLeaseObject(c *v1.Cluster) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		TypeMeta: metav1.TypeMeta{APIVersion: coordinationv1.SchemeGroupVersion.String(), Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{Name: AgentLease(c.Name), Namespace: AgentNamespace(client.ObjectKeyFromObject(c)), Labels: map[string]string{
			"app.kubernetes.io/managed-by": "strata", HeartbeatLabel: c.Name, HeartbeatNamespaceLabel: c.Namespace,
		}},
	}
}

// agentLeaseOf is the agent's Lease as the manager's cache holds it, the
// one renewed last: in the agent's namespace, or in the cluster's for an
// agent of an earlier version that still renews its Lease there. Nil when
// there is none (an agent older still reports in its status only).
func (r *ClusterReconciler) agentLeaseOf(ctx context.Context, c *v1.Cluster) *coordinationv1.Lease {
	var last *coordinationv1.Lease
	for _, key := range []types.NamespacedName{
		{Namespace: AgentNamespace(client.ObjectKeyFromObject(c)), Name: AgentLease(c.Name)},
		{Namespace: c.Namespace, Name: AgentLease(c.Name)},
	} {
		lease := &coordinationv1.Lease{}
		if err := r.Get(ctx, key, lease); err != nil || lease.Spec.RenewTime == nil {
			continue
		}
		if last == nil || lease.Spec.RenewTime.After(last.Spec.RenewTime.Time) {
			last = lease
		}
	}
	return last
}

// clusterOfLease maps a renewed Lease to its Cluster when the manager shows
// that agent away; a renewal of an agent shown connected needs no look:
// its deadline is looked at when it comes.
func (r *ClusterReconciler) clusterOfLease(ctx context.Context, o client.Object) []reconcile.Request {
	name, namespace := o.GetLabels()[HeartbeatLabel], o.GetLabels()[HeartbeatNamespaceLabel]
	if namespace == "" {
		namespace = o.GetNamespace() // a Lease made by an earlier version, beside its Cluster
	}
	c := &v1.Cluster{}
	if name == "" || r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, c) != nil {
		return nil
	}
	if apimeta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionAgentConnected) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(c)}}
}
