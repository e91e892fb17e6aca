package agent

import (
	"context"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
)

// heartbeat renews the agent's Lease (controller.AgentLease, made by the
// manager in the agent's namespace, controller.AgentNamespace) every
// opts.Heartbeat, give or take a tenth so that agents started together do
// not beat together, until ctx ends. The Cluster's status is not written:
// a manager that showed the agent away learns it is back from the Lease,
// and the agent's next reconcile writes the status it holds (wake).
//
// A report is a heartbeat too: the manager reads the time it carries. So a
// renewal waits a heartbeat from the agent's last report when that came
// after its last renewal: when a new profile version reaches the whole
// fleet, the renewals due within a heartbeat of each agent's report are
// writes the plane does not serve while it is busiest. (A change that takes
// the fleet many heartbeats saves only that one renewal per agent.)
//
// A renewal due while the agent is working on its cluster waits for the
// report that work ends in, up to two heartbeats from the agent's last
// word: the Lease lasts three. When a new version reaches ten thousand
// agents, their reports queue at the API server for a minute or more, and
// each renewal made meanwhile is one more write for the plane while it is
// busiest (at rest at 10,000, about 4 ms of its CPU each).
type heartbeat struct {
	opts Options
	// cached reads the agent's own Cluster from its cache; direct reads
	// and writes the Lease, which the agent's cache does not hold.
	cached, direct client.Reader
	writer         client.Writer
	wake           func()
	// reported says when the agent last wrote its status (zero: never).
	reported func() time.Time
	// working says whether the agent is working on its cluster.
	working func() bool
}

func (h *heartbeat) run(ctx context.Context) {
	key := types.NamespacedName{Namespace: controller.AgentNamespace(h.opts.Cluster), Name: controller.AgentLease(h.opts.Cluster.Name)}
	var lease *coordinationv1.Lease
	last := time.Now()
	for {
		if !h.waitForBeat(ctx, last) {
			return
		}
		last = time.Now()
		c := &v1.Cluster{}
		if err := h.cached.Get(ctx, h.opts.Cluster, c); err != nil || c.Spec.Mode != v1.ModeAgent || !c.DeletionTimestamp.IsZero() {
			continue
		}
		if !apimeta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionAgentConnected) {
			// The manager showed the agent away: its full reconcile
			// writes the status, connected.
			h.wake()
		}
		// An unreachable management plane is what the heartbeat finds
		// out; the next beat tries again.
		lease, _ = h.renew(ctx, key, lease)
	}
}

// waitForBeat waits until a heartbeat, give or take a tenth, has passed
// since the later of the last beat and the last report, and longer while
// the agent works, up to two heartbeats; false when ctx ends first.
func (h *heartbeat) waitForBeat(ctx context.Context, last time.Time) bool {
	period := time.Duration(float64(h.opts.Heartbeat) * (0.9 + 0.2*rand.Float64()))
	for {
		since := last
		if reported := h.reported(); reported.After(since) {
			since = reported
		}
		wait := time.Until(since.Add(period))
		if wait <= 0 {
			latest := time.Until(since.Add(2 * h.opts.Heartbeat))
			if h.working == nil || !h.working() || latest <= 0 {
				return true
			}
			// Look again soon: the work may end with no report.
			wait = min(latest, workingLook)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// workingLook is how often a renewal held for the agent's work looks
// whether the work is done.
const workingLook = time.Second

// renew renews the Lease, from the copy written last when there is one (one
// request a beat), else as read.
func (h *heartbeat) renew(ctx context.Context, key types.NamespacedName, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	lease := last
	if lease == nil {
		lease = &coordinationv1.Lease{}
		if err := h.direct.Get(ctx, key, lease); err != nil {
			return nil, err
		}
	}
	lease = lease.DeepCopy()
	lease.Spec.HolderIdentity = ptr.To("strata-agent " + h.opts.Version)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(controller.HeartbeatsMissed * h.opts.Heartbeat / time.Second))
	lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if err := h.writer.Update(ctx, lease); err != nil {
		if apierrors.IsConflict(err) && last != nil {
			return h.renew(ctx, key, nil) // changed meanwhile: read it again
		}
		return nil, err
	}
	return lease, nil
}
