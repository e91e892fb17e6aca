package controller

import (
	"context"

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

// HeartbeatLabel marks an agent's Lease with the name of its Cluster; the
// manager's cache holds only Leases so labelled.
const HeartbeatLabel = "strata.dev/heartbeat-of"

// AgentLease names the Lease, in the cluster's namespace, that its agent
// renews.
func AgentLease(cluster string) string { return "strata-agent-" + cluster }

// heartbeatLeases selects agents' Leases, for the manager's cache.
func heartbeatLeases() labels.Selector {
	req, _ := labels.NewRequirement(HeartbeatLabel, selection.Exists, nil) // a constant key: never fails
	return labels.NewSelector().Add(*req)
}

// agentLeaseObject is the Lease the manager makes for an agent: metadata
// only, so applying it again never touches what the agent renews.
func agentLeaseObject(meta metav1.ObjectMeta) *coordinationv1.Lease {
	meta.Labels = map[string]string{"app.kubernetes.io/managed-by": "strata", HeartbeatLabel: meta.Labels["strata.dev/cluster"]}
	return &coordinationv1.Lease{TypeMeta: metav1.TypeMeta{APIVersion: coordinationv1.SchemeGroupVersion.String(), Kind: "Lease"}, ObjectMeta: meta}
}

// agentLeaseOf is the agent's Lease as the manager's cache holds it; nil
// when there is none (an agent of an earlier version reports in its
// status only).
func (r *ClusterReconciler) agentLeaseOf(ctx context.Context, c *v1.Cluster) *coordinationv1.Lease {
	lease := &coordinationv1.Lease{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: AgentLease(c.Name)}, lease); err != nil || lease.Spec.RenewTime == nil {
		return nil
	}
	return lease
}

// clusterOfLease maps a renewed Lease to its Cluster when the manager shows
// that agent away; a renewal of an agent shown connected needs no look:
// its deadline is looked at when it comes.
func (r *ClusterReconciler) clusterOfLease(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[HeartbeatLabel]
	c := &v1.Cluster{}
	if name == "" || r.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: name}, c) != nil {
		return nil
	}
	if apimeta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionAgentConnected) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(c)}}
}
