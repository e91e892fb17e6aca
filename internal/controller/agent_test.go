package controller

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	v1 "strata.dev/strata/api/v1alpha1"
)

// The manager shows an agent disconnected only after three missed
// heartbeats, and looks again just after the third would be late.
func TestAgentConnection(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "store", Namespace: "retail"}}
	if status, reason, _, _ := agentConnection(c, nil, now); status != metav1.ConditionFalse || reason != "NotRegistered" {
		t.Errorf("no agent yet: %s %s", status, reason)
	}
	for _, tc := range []struct {
		since  time.Duration
		status metav1.ConditionStatus
		next   time.Duration
	}{
		{0, metav1.ConditionTrue, 91 * time.Second},
		{89 * time.Second, metav1.ConditionTrue, 2 * time.Second},
		{91 * time.Second, metav1.ConditionFalse, 30 * time.Second},
	} {
		c.Status.Agent = &v1.AgentStatus{HeartbeatSeconds: 30, LastHeartbeatTime: metav1.NewTime(now.Add(-tc.since))}
		status, reason, _, next := agentConnection(c, nil, now)
		if status != tc.status || next != tc.next {
			t.Errorf("heartbeat %s ago: %s %s, next look in %s; want %s in %s", tc.since, status, reason, next, tc.status, tc.next)
		}
	}
}

// With a Lease, its renewal is the heartbeat: a status written long ago
// does not make the agent look away, and the Lease's duration is the
// deadline.
func TestAgentConnectionFromItsLease(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "store", Namespace: "retail"},
		Status: v1.ClusterStatus{Agent: &v1.AgentStatus{HeartbeatSeconds: 30, LastHeartbeatTime: metav1.NewTime(now.Add(-time.Hour))}}}
	for _, tc := range []struct {
		renewed time.Duration
		status  metav1.ConditionStatus
		next    time.Duration
	}{
		{0, metav1.ConditionTrue, 31 * time.Second},
		{29 * time.Second, metav1.ConditionTrue, 2 * time.Second},
		{31 * time.Second, metav1.ConditionFalse, 10 * time.Second},
	} {
		lease := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{
			RenewTime: &metav1.MicroTime{Time: now.Add(-tc.renewed)}, LeaseDurationSeconds: ptr.To(int32(30)),
		}}
		status, reason, _, next := agentConnection(c, lease, now)
		if status != tc.status || next != tc.next {
			t.Errorf("Lease renewed %s ago: %s %s, next look in %s; want %s in %s", tc.renewed, status, reason, next, tc.status, tc.next)
		}
	}
}

// An agent's namespace is a valid namespace name for any Cluster, says
// which Cluster it serves, and differs for Clusters whose joined names
// read alike.
func TestAgentNamespaceNames(t *testing.T) {
	long := strings.Repeat("edge-site.", 25) + "x"
	for _, c := range []types.NamespacedName{{Namespace: "retail", Name: "store-042"}, {Namespace: "a-b", Name: "c"}, {Namespace: "a", Name: "b-c"}, {Namespace: "retail", Name: long}} {
		ns := AgentNamespace(c)
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			t.Errorf("AgentNamespace(%s) = %q: %v", c, ns, errs)
		}
		if len(c.Name) < 20 && !strings.HasPrefix(ns, "strata-agent-"+c.Namespace+"-"+c.Name+"-") {
			t.Errorf("AgentNamespace(%s) = %q: want it to read strata-agent-NAMESPACE-NAME-HASH", c, ns)
		}
	}
	if a, b := AgentNamespace(types.NamespacedName{Namespace: "a-b", Name: "c"}), AgentNamespace(types.NamespacedName{Namespace: "a", Name: "b-c"}); a == b {
		t.Errorf("a-b/c and a/b-c share the agent namespace %q", a)
	}
}
