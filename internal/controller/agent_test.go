package controller

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/testenv"
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

// The manager decides how an agent stands on the stored Cluster, not on a
// cached one that is behind: an agent that has just reported for the first
// time is not shown as never registered (which its agent would then write
// over, two writes at rest for nothing), while one that fell silent is
// shown disconnected.
func TestTheManagerDecidesAConnectionOnTheStoredCluster(t *testing.T) {
	ctx := context.Background()
	c, r := agentClusterPlane(t)
	report := func(name string, heard time.Time) (cached, stored *v1.Cluster) {
		cached = &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "edge"}, Spec: v1.ClusterSpec{Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}}}}
		if err := c.Create(ctx, cached); err != nil {
			t.Fatal(err)
		}
		stored = cached.DeepCopy()
		stored.Status.Agent = &v1.AgentStatus{LastHeartbeatTime: metav1.NewTime(heard), HeartbeatSeconds: 30}
		setCondition(stored, v1.ConditionAgentConnected, metav1.ConditionTrue, "Heartbeat", "the agent reports")
		if err := c.Status().Update(ctx, stored); err != nil {
			t.Fatal(err)
		}
		return cached, stored
	}
	connected := func(name string) *metav1.Condition {
		var got v1.Cluster
		if err := c.Get(ctx, types.NamespacedName{Namespace: "edge", Name: name}, &got); err != nil {
			t.Fatal(err)
		}
		return apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionAgentConnected)
	}

	cached, stored := report("just-joined", time.Now())
	if status, reason, _, _ := agentConnection(cached, nil, time.Now()); status != metav1.ConditionFalse || reason != "NotRegistered" {
		t.Fatalf("the cached Cluster reads %s %s; the test wants one that reads NotRegistered", status, reason)
	}
	next, err := r.showAgentStatus(ctx, cached, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cond := connected("just-joined"); cond.Status != metav1.ConditionTrue || cond.Reason != "Heartbeat" {
		t.Errorf("an agent that has reported reads AgentConnected %s %s (%s); want True Heartbeat", cond.Status, cond.Reason, cond.Message)
	}
	var after v1.Cluster
	if err := c.Get(ctx, client.ObjectKeyFromObject(stored), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != stored.ResourceVersion {
		t.Errorf("the Cluster was written (resourceVersion %s → %s) though it already told how its agent stands", stored.ResourceVersion, after.ResourceVersion)
	}
	if next <= 0 || next > HeartbeatsMissed*30*time.Second+time.Second {
		t.Errorf("look again in %s; want within three heartbeats of the agent's report", next)
	}

	cached, _ = report("gone-quiet", time.Now().Add(-10*time.Minute))
	if _, err := r.showAgentStatus(ctx, cached, nil); err != nil {
		t.Fatal(err)
	}
	if cond := connected("gone-quiet"); cond.Status != metav1.ConditionFalse || cond.Reason != "HeartbeatMissed" {
		t.Errorf("an agent silent for 10 minutes reads AgentConnected %s %s; want False HeartbeatMissed", cond.Status, cond.Reason)
	}
}

// An agent reports in its own namespace, and the manager shows the report
// in the Cluster's status, with its own word on whether the agent is
// connected. Shown once, it is not written again; a report older than the
// Cluster's status (an agent of an earlier version wrote there since) is
// not shown over it.
func TestTheManagerShowsTheAgentsReport(t *testing.T) {
	ctx := context.Background()
	c, r := agentClusterPlane(t)
	cluster := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "store-1", Namespace: "edge"}, Spec: v1.ClusterSpec{Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}}}}
	if err := c.Create(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: AgentNamespace(client.ObjectKeyFromObject(cluster))}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, agentReportObject(cluster)); err != nil {
		t.Fatal(err)
	}
	report := func(heard time.Time, version string) {
		t.Helper()
		status := &v1.ClusterStatus{Phase: v1.ClusterReady, KubernetesVersion: "v1.37.2",
			Agent: &v1.AgentStatus{Version: version, LastHeartbeatTime: metav1.NewTime(heard), HeartbeatSeconds: 30}}
		apimeta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: v1.ConditionAgentConnected, Status: metav1.ConditionTrue, Reason: "Heartbeat", Message: "the agent reports"})
		if err := r.writeReport(ctx, client.ObjectKeyFromObject(cluster), status); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() *v1.Cluster {
		t.Helper()
		got := &v1.Cluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(cluster), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	show := func() {
		t.Helper()
		if _, err := r.showAgentStatus(ctx, stored(), nil); err != nil {
			t.Fatal(err)
		}
	}

	report(time.Now(), "v9.9.9")
	show()
	got := stored()
	if got.Status.Phase != v1.ClusterReady || got.Status.Agent == nil || got.Status.Agent.Version != "v9.9.9" {
		t.Fatalf("the Cluster shows phase %q, agent %+v; want the agent's report: Ready, v9.9.9", got.Status.Phase, got.Status.Agent)
	}
	if cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionAgentConnected); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("AgentConnected %+v; want True", cond)
	}
	// The status is written without the managed fields; the API server
	// keeps them, and records the write: who wrote what stays known.
	for _, sub := range []string{"", "status"} {
		if !slices.ContainsFunc(got.ManagedFields, func(m metav1.ManagedFieldsEntry) bool { return m.Subresource == sub }) {
			t.Errorf("the Cluster's managed fields %+v have no entry for subresource %q", got.ManagedFields, sub)
		}
	}
	show()
	if again := stored(); again.ResourceVersion != got.ResourceVersion {
		t.Errorf("the report was shown again (resourceVersion %s → %s) though nothing changed", got.ResourceVersion, again.ResourceVersion)
	}

	// An agent of an earlier version writes the Cluster's status later.
	got.Status.Agent.Version, got.Status.Agent.LastHeartbeatTime = "v0.1.0", metav1.NewTime(time.Now().Add(time.Minute))
	if err := c.Status().Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	show()
	if v := stored().Status.Agent.Version; v != "v0.1.0" {
		t.Errorf("the agent's version reads %s; want v0.1.0, written after the report", v)
	}

	// The report says the agent is connected, but its last word is 10
	// minutes old: the manager's word is shown, once.
	got = stored()
	got.Status = v1.ClusterStatus{}
	if err := c.Status().Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	report(time.Now().Add(-10*time.Minute), "v9.9.9")
	show()
	got = stored()
	if cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionAgentConnected); cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "HeartbeatMissed" {
		t.Errorf("an agent silent for 10 minutes reads AgentConnected %+v; want False HeartbeatMissed", cond)
	}
	show()
	if again := stored(); again.ResourceVersion != got.ResourceVersion {
		t.Errorf("a disconnected agent's report was shown again (resourceVersion %s → %s)", got.ResourceVersion, again.ResourceVersion)
	}
}

// agentClusterPlane is a management plane with a namespace "edge" and the
// manager's reconciler on it, reading what is stored (no cache).
func agentClusterPlane(t *testing.T) (client.Client, *ClusterReconciler) {
	t.Helper()
	mgmt := testenv.Management(t, "../../config/crd/bases")
	c, err := client.New(mgmt, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "edge"}}); err != nil {
		t.Fatal(err)
	}
	return c, &ClusterReconciler{Client: c, APIReader: c}
}

// reportRequests counts the requests made on agents' reports, by method.
type reportRequests struct {
	mu sync.Mutex
	n  map[string]int
}

func (q *reportRequests) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if strings.Contains(req.URL.Path, "/configmaps/strata-agent-report-") {
			q.mu.Lock()
			q.n[req.Method]++
			q.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

func (q *reportRequests) count() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps.Clone(q.n)
}

// An agent writes its report whole, over the copy it wrote last: it reads
// it once, then only writes; when someone else wrote it meanwhile (the
// manager, its labels), it reads it again and its report is not lost, nor
// are the labels; when there is no report, it says so.
func TestAnAgentWritesItsReportWhole(t *testing.T) {
	ctx := context.Background()
	mgmt := testenv.Management(t, "../../config/crd/bases")
	c, err := client.New(mgmt, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	requests := &reportRequests{n: map[string]int{}}
	counted := rest.CopyConfig(mgmt)
	counted.WrapTransport = requests.wrap
	agentClient, err := client.New(counted, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	agent := &ClusterReconciler{Client: agentClient, APIReader: agentClient}
	cluster := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "store-2", Namespace: "edge"}}
	key := client.ObjectKeyFromObject(cluster)
	for _, ns := range []string{"edge", AgentNamespace(key)} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, agentReportObject(cluster)); err != nil {
		t.Fatal(err)
	}
	stored := func() *corev1.ConfigMap {
		t.Helper()
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: AgentNamespace(key), Name: AgentReport(cluster.Name)}, cm); err != nil {
			t.Fatal(err)
		}
		return cm
	}
	report := func(kv string) error {
		return agent.writeReport(ctx, key, &v1.ClusterStatus{Phase: v1.ClusterReady, KubernetesVersion: kv})
	}
	reported := func(cm *corev1.ConfigMap) string {
		t.Helper()
		var st v1.ClusterStatus
		if err := json.Unmarshal([]byte(cm.Data[ReportKey]), &st); err != nil {
			t.Fatalf("the report holds %q: %v", cm.Data[ReportKey], err)
		}
		return st.KubernetesVersion
	}

	for _, kv := range []string{"v1.37.0", "v1.37.1", "v1.37.2"} {
		if err := report(kv); err != nil {
			t.Fatal(err)
		}
		if got := reported(stored()); got != kv {
			t.Fatalf("the report says %s, want %s", got, kv)
		}
	}
	if got := requests.count(); got[http.MethodGet] != 1 || got[http.MethodPut] != 3 || got[http.MethodPatch] != 0 {
		t.Errorf("three reports made %v; want one read and three writes", got)
	}

	cm := stored()
	cm.Labels["team"] = "edge-ops"
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := report("v1.38.0"); err != nil {
		t.Fatalf("a report after someone else wrote it: %v", err)
	}
	cm = stored()
	if got := reported(cm); got != "v1.38.0" || cm.Labels["team"] != "edge-ops" || cm.Labels[ReportLabel] != cluster.Name {
		t.Errorf("after someone else wrote it, the report says %s with labels %v; want v1.38.0 and their labels kept", got, cm.Labels)
	}
	if got := requests.count(); got[http.MethodGet] != 2 || got[http.MethodPut] != 5 {
		t.Errorf("a report over someone else's write made %v in all; want one more read and two more writes (one refused)", got)
	}

	if err := c.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := report("v1.38.1"); !errors.Is(err, ErrNoReport) {
		t.Errorf("a report with none made: %v; want ErrNoReport", err)
	}
}
