package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "strata.dev/strata/api/v1alpha1"
)

// An agent reports its cluster's status in its own namespace
// (AgentNamespace), in a ConfigMap the manager makes for it, and the
// manager copies the report into the Cluster's status, where users read it.
//
// Why not write the Cluster's status: every agent has a RoleBinding in its
// project's namespace (to read its own Cluster, which holds its masked
// variables), and the API server's RBAC authorizer walks a namespace's
// RoleBindings on each request there. A status write in a project of 5,000
// agents took about 6 ms to authorize, more than the write itself, and
// twice that at 10,000: a new profile version, which every agent reports,
// cost the fleet time in proportion to its square. In the agent's own
// namespace one RoleBinding authorizes the report; the manager's copy is
// authorized by its ClusterRoleBinding. The Lease (heartbeat.go) moved out
// for the same reason.
//
// An agent of an earlier version, or one whose manager made no report,
// writes the Cluster's status as before; the status written last wins.

// ReportLabel marks an agent's report with the name of its Cluster, and
// ClusterNamespaceLabel with the Cluster's namespace; the manager's cache
// holds only ConfigMaps so labelled.
const ReportLabel = "strata.dev/report-of"

// ReportKey is the report's key: the Cluster's status, as JSON.
const ReportKey = "status"

// AgentReport names the ConfigMap, in the agent's namespace, that holds its
// report.
func AgentReport(cluster string) string { return "strata-agent-report-" + cluster }

// ErrNoReport says that the agent has no report to write to: a manager of
// an earlier version made none, so the agent writes the Cluster's status.
var ErrNoReport = errors.New("no report made for this agent")

// agentReports selects agents' reports, for the manager's cache.
func agentReports() labels.Selector {
	req, _ := labels.NewRequirement(ReportLabel, selection.Exists, nil) // a constant key: never fails
	return labels.NewSelector().Add(*req)
}

// agentReportObject is the report the manager makes for the agent of c:
// metadata only, so applying it again never touches what the agent wrote.
func agentReportObject(c *v1.Cluster) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: AgentReport(c.Name), Namespace: AgentNamespace(client.ObjectKeyFromObject(c)), Labels: map[string]string{
			"app.kubernetes.io/managed-by": "strata", ReportLabel: c.Name, ClusterNamespaceLabel: c.Namespace,
		}},
	}
}

// reportRule lets an agent read and write its report, no other. It may
// patch it too, as agents of an earlier version do.
func reportRule(cluster string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{AgentReport(cluster)}, Verbs: []string{"get", "update", "patch"}}
}

// lastReport is the report as the agent wrote it last. The next report
// replaces it whole, from that copy: the API server decodes the new object
// and stores it. A patch would cost it more on every report of a fleet
// that all report at once: the stored object turned into JSON, the patch
// merged into that, and the result decoded back.
type lastReport struct {
	mu     sync.Mutex
	stored *corev1.ConfigMap
}

// writeReport writes status as the agent's report on the cluster, or says
// ErrNoReport when there is none to write to (or the agent may not write
// it: a manager of an earlier version made it).
func (r *ClusterReconciler) writeReport(ctx context.Context, cluster types.NamespacedName, status *v1.ClusterStatus) error {
	raw, err := json.Marshal(status)
	if err != nil {
		return err
	}
	r.report.mu.Lock()
	defer r.report.mu.Unlock()
	key := types.NamespacedName{Namespace: AgentNamespace(cluster), Name: AgentReport(cluster.Name)}
	for {
		cm, read := r.report.stored, false
		if cm == nil || cm.Namespace != key.Namespace || cm.Name != key.Name {
			// Read once, then again only when someone else wrote it (the
			// manager, its labels) or a write failed on the way.
			cm, read = &corev1.ConfigMap{}, true
			if err := r.APIReader.Get(ctx, key, cm); err != nil {
				return noReport(err)
			}
		}
		// The copy is the agent's alone, written over in place: kept when
		// the write succeeds, dropped when it fails. Managed fields left
		// out stay as they are: no need to send them back.
		cm.ManagedFields = nil
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[ReportKey] = string(raw)
		err := r.Update(ctx, cm)
		if err == nil {
			r.report.stored = cm
			return nil
		}
		r.report.stored = nil
		if !apierrors.IsConflict(err) || read {
			return noReport(err)
		}
	}
}

// noReport says ErrNoReport when err says there is no report, or the agent
// may not write it.
func noReport(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return fmt.Errorf("%w: %w", ErrNoReport, err)
	}
	return err
}

// agentReportOf is the status the agent of c reported last, as the
// manager's cache holds it; nil when it has reported none there, or when
// the Cluster's status was written after it (an agent of an earlier
// version writes there).
func (r *ClusterReconciler) agentReportOf(ctx context.Context, c *v1.Cluster) *v1.ClusterStatus {
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: AgentNamespace(client.ObjectKeyFromObject(c)), Name: AgentReport(c.Name)}
	if err := r.Get(ctx, key, cm); err != nil || cm.Data[ReportKey] == "" {
		return nil
	}
	report := &v1.ClusterStatus{}
	if err := json.Unmarshal([]byte(cm.Data[ReportKey]), report); err != nil || report.Agent == nil {
		return nil
	}
	if shown := c.Status.Agent; shown != nil && report.Agent.LastHeartbeatTime.Before(&shown.LastHeartbeatTime) {
		return nil
	}
	return report
}

// agentStatusShown is the status the Cluster should show: the agent's
// report when there is one, else what the Cluster holds, with the
// manager's word on whether the agent is connected (kept as the Cluster
// shows it when it has not changed, so that repeating this writes
// nothing). It says when to look again.
func agentStatusShown(c *v1.Cluster, report *v1.ClusterStatus, lease *coordinationv1.Lease, now time.Time) (*v1.ClusterStatus, time.Duration) {
	shown := c.Status.DeepCopy()
	if report != nil {
		shown = report.DeepCopy()
		apimeta.RemoveStatusCondition(&shown.Conditions, v1.ConditionAgentConnected)
		if cond := apimeta.FindStatusCondition(c.Status.Conditions, v1.ConditionAgentConnected); cond != nil {
			shown.Conditions = append(shown.Conditions, *cond)
		}
	}
	withStatus := &v1.Cluster{ObjectMeta: c.ObjectMeta, Status: *shown}
	status, reason, message, next := agentConnection(withStatus, lease, now)
	if shown.Agent == nil && shown.Phase == "" {
		shown.Phase = v1.ClusterPending
	}
	apimeta.SetStatusCondition(&shown.Conditions, metav1.Condition{Type: v1.ConditionAgentConnected, Status: status, Reason: reason, Message: message, ObservedGeneration: c.Generation})
	return shown, next
}

// showAgentStatus writes what the Cluster should show (agentStatusShown)
// when it does not show it yet, and says when to look again. It is decided
// on the cached Cluster and written only if that is the stored one: when
// the cache is behind (the manager's last write, an agent's first report
// of an earlier version, which would be shown as never registered) the
// write is refused, and it is decided again on the stored Cluster.
func (r *ClusterReconciler) showAgentStatus(ctx context.Context, c *v1.Cluster, lease *coordinationv1.Lease) (next time.Duration, err error) {
	latest := c.DeepCopy()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var shown *v1.ClusterStatus
		shown, next = agentStatusShown(latest, r.agentReportOf(ctx, latest), lease, time.Now())
		if equalStatus(shown, &latest.Status) {
			return nil
		}
		latest.Status = *shown
		err := r.updateStatus(ctx, latest)
		if apierrors.IsConflict(err) {
			stored := &v1.Cluster{}
			if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(c), stored); err != nil {
				return client.IgnoreNotFound(err)
			}
			latest = stored
		}
		return err
	})
	return next, client.IgnoreNotFound(err)
}

// clusterOfReport maps a report to its Cluster.
func clusterOfReport(_ context.Context, o client.Object) []reconcile.Request {
	name, namespace := o.GetLabels()[ReportLabel], o.GetLabels()[ClusterNamespaceLabel]
	if name == "" || namespace == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}}}
}
