package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/testenv"
)

// While an agent keeps reporting, its reports are its heartbeats: the
// Lease waits. Once it stops, the Lease is renewed again within a beat.
func TestAReportPutsOffTheNextLeaseRenewal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, key, renewTime := leaseFixture(t)

	// The agent "reports" every time the heartbeat asks when it last did,
	// until told to stop.
	var reporting atomic.Bool
	var asked atomic.Int32
	reporting.Store(true)
	stoppedAt := time.Now().Add(-time.Hour)
	beat := &heartbeat{
		opts:   Options{Cluster: key, Heartbeat: time.Second, Version: "test"},
		cached: c, direct: c, writer: c, wake: func() {},
		reported: func() time.Time {
			asked.Add(1)
			if reporting.Load() {
				return time.Now()
			}
			return stoppedAt
		},
	}
	done := make(chan struct{})
	go func() { beat.run(ctx); close(done) }()
	// Three beats' worth of reports: each time the heartbeat looked, the
	// agent had just reported, and the Lease stayed as it was.
	testenv.WaitUntil(t, "the heartbeat to find a fresh report three times over", time.Minute, func() (bool, string) {
		return asked.Load() >= 4, ""
	})
	if got := renewTime(); got != nil {
		t.Fatalf("the Lease was renewed at %s while the agent reported at every beat", got)
	}
	reporting.Store(false)
	stopped := time.Now()
	testenv.WaitUntil(t, "the Lease renewed once the reports stopped", time.Minute, func() (bool, string) {
		got := renewTime()
		return got != nil && got.After(stopped), ""
	})
	cancel()
	<-done
}

// A renewal due while the agent works on its cluster waits for the report
// that work ends in, but no longer than two heartbeats from the agent's
// last word: the Lease lasts three, and work that never reports must not
// let it lapse.
func TestARenewalWaitsForTheWorkUnderWay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, key, renewTime := leaseFixture(t)
	var looked atomic.Int32
	beat := &heartbeat{
		opts:   Options{Cluster: key, Heartbeat: time.Second, Version: "test"},
		cached: c, direct: c, writer: c, wake: func() {},
		reported: func() time.Time { return time.Time{} },
		// Work that never ends, nor reports.
		working: func() bool { looked.Add(1); return true },
	}
	started := time.Now()
	done := make(chan struct{})
	go func() { beat.run(ctx); close(done) }()
	testenv.WaitUntil(t, "the Lease renewed though the work never ended", time.Minute, func() (bool, string) {
		return renewTime() != nil, ""
	})
	// Due after a heartbeat (1 s, give or take a tenth), held to two.
	if held := renewTime().Sub(started); held < 1500*time.Millisecond {
		t.Errorf("the Lease was renewed %s after the last beat while the agent worked; want it held to two heartbeats (2 s)", held)
	}
	if looked.Load() == 0 {
		t.Error("the heartbeat renewed without looking whether the agent was working")
	}
	cancel()
	<-done
}

// leaseFixture is a management plane with an agent-mode Cluster shown
// connected and its empty Lease; renewTime reads the Lease's renewal.
func leaseFixture(t *testing.T) (c client.Client, key types.NamespacedName, renewTime func() *metav1.MicroTime) {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(testenv.Management(t, "../../config/crd/bases"), client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	key = types.NamespacedName{Namespace: "edge", Name: "site-1"}
	cluster := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
	}}
	leaseKey := types.NamespacedName{Namespace: controller.AgentNamespace(key), Name: controller.AgentLease(key.Name)}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key.Namespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseKey.Namespace}},
		cluster,
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseKey.Name, Namespace: leaseKey.Namespace}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cluster.Status.Conditions = []metav1.Condition{{Type: v1.ConditionAgentConnected, Status: metav1.ConditionTrue, Reason: "Heartbeat", LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	return c, key, func() *metav1.MicroTime {
		lease := &coordinationv1.Lease{}
		if err := c.Get(ctx, leaseKey, lease); err != nil {
			t.Fatal(err)
		}
		return lease.Spec.RenewTime
	}
}
