// Package controller holds the management plane's reconcilers: clusters
// follow the profiles attached to them through the same engine that
// `strata deploy` uses.
package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/health"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/rollout"
	"strata.dev/strata/internal/stack"
)

// Finalizer keeps a Cluster until its layers are removed from the workload
// cluster.
const Finalizer = "strata.dev/layers"

// OrphanAnnotation, set to "true" on a Cluster, leaves its layers running
// on the workload cluster when the Cluster is deleted.
const OrphanAnnotation = "strata.dev/orphan"

// ShardLabel on a Cluster names the shard whose manager reconciles it;
// Clusters without it are the unsharded manager's.
const ShardLabel = "strata.dev/shard"

// SharedNamespace holds profiles that serve every project.
const SharedNamespace = "strata-system"

// ClusterReconciler converges each Cluster to the stack of its profiles.
type ClusterReconciler struct {
	client.Client
	// Packs the profiles' layers use: the folders given to the manager.
	Packs stack.Packs
	// Registries, when set, are searched before Packs (PackRegistry objects).
	Registries *registry.Set
	// LayerTimeout bounds each layer's readiness wait.
	LayerTimeout time.Duration
	// Resync is how often a Ready cluster is checked for drift.
	Resync   time.Duration
	Recorder events.EventRecorder
	// APIReader reads kubeconfig Secrets without caching every Secret of
	// the management plane.
	APIReader client.Reader
	// Workers is how many clusters are worked on at once; 4 when zero.
	// Clusters waiting for their objects to become ready do not count.
	Workers int
	// Local runs the clusters of provider local; nil outside `strata up`.
	Local *local.Provider
	// Shard is the value of ShardLabel of the Clusters this reconciler
	// serves; empty serves those without the label.
	Shard string
	// Agent, when set, makes this the agent of one agent-mode Cluster: it
	// applies the stack to the cluster it runs in (Workload) and writes the
	// Cluster's status only. Unset, this is the manager's, which never
	// connects to agent-mode clusters.
	Agent *AgentRole
	// Workload reaches the agent's own cluster; only with Agent.
	Workload *rest.Config
	// AnnounceAfter is how long a change runs before the status says it is
	// under way (Reconciling, each layer's progress); 2 s when zero. A
	// change done sooner is written once, with its outcome.
	AnnounceAfter time.Duration
	// Hollow, instead of Workload, makes a hollow agent for load tests: the
	// cluster is not there, and applying only records the plan.
	Hollow *engine.Hollow

	conns *connections
	// turns let Workers clusters be worked on at once.
	turns engine.Turns
	// renders is shared by every cluster's engine: a layer many clusters
	// run with the same inputs is rendered once.
	renders *engine.RenderCache
	// statuses holds the status last written for each cluster.
	statuses *writtenStatuses
	// report is an agent's report as it last wrote it (report.go).
	report lastReport
	// reportedAt is when an agent last wrote its status, in Unix seconds.
	reportedAt atomic.Int64
	// working counts an agent's reconciles under way (Working).
	working atomic.Int32
	// agentAccess holds the agent-mode clusters (by UID) whose agent's
	// ServiceAccount and RBAC this manager has applied, and the shared
	// agents' Role once applied (by its name).
	agentAccess sync.Map
	// projectAgents lets one cluster of a project at a time bind the
	// project's agents in the shared namespace (agent.go).
	projectAgents sync.Mutex
	// applying holds the change in flight on each cluster (by UID).
	applying sync.Map
	// wake queues reconciles from outside the API: drift seen by a watch
	// on a workload cluster, a local control plane that died.
	wake chan event.GenericEvent
}

// Reconcile resolves, plans and applies one Cluster, and writes its status
// once at the end.
func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	if r.Agent != nil {
		r.working.Add(1)
		defer r.working.Add(-1)
	}
	c := &v1.Cluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.Agent == nil && c.Labels[ShardLabel] != r.Shard {
		// Another shard's: let go of it if it just moved there.
		r.forgetConnection(c)
		r.statuses.forget(c.UID)
		return ctrl.Result{}, nil
	}
	if r.Agent == nil && c.Spec.Mode == v1.ModeAgent {
		// The manager's part of an agent-mode cluster renders and applies
		// nothing: it shows the agent's report, a request or two. It
		// takes no turn, which bounds that work. When a new version
		// reaches ten thousand agents, their reports wait for the
		// manager to show them; four at a time, each a write to a busy
		// API server, the fleet waited on the turns.
		return r.reconcileAgentCluster(ctx, c)
	}
	// A cluster is worked on in turn with others; its engine gives the turn
	// up while it waits for the cluster.
	r.turns.Take()
	defer r.turns.Give()
	switch {
	case r.Agent != nil && c.Spec.Mode != v1.ModeAgent:
		// Back in push mode: the manager has it.
		return ctrl.Result{}, nil
	case r.Agent != nil && r.Agent.Follows != nil && !r.Agent.Follows(c):
		// The agent's cache holds other profiles than the cluster now
		// attaches: the agent starts again with those.
		return ctrl.Result{}, nil
	}
	if !c.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, c)
	}
	// The manager keeps the finalizer; an agent may write only the status.
	if r.Agent == nil && controllerutil.AddFinalizer(c, Finalizer) {
		if err := r.Update(ctx, c); err != nil {
			return ctrl.Result{}, err
		}
	}
	// An agent whose Cluster is not shown connected — it was away, or
	// never reported — writes its status even when nothing else changed,
	// once: the manager shows it connected when it reads the report.
	agentAway := r.Agent != nil && !apimeta.IsStatusConditionTrue(c.Status.Conditions, v1.ConditionAgentConnected) && !r.reportedSinceShownAway(c)
	// The cache may not have seen the status the last reconcile wrote: start
	// from that one, or a change back to what the cache shows would look
	// like no change and never be written.
	if last := r.statuses.last(c.UID); last != nil {
		c.Status = *last
	}
	before := c.Status.DeepCopy()
	defer func() {
		observe(c)
		c.Status.ObservedGeneration = c.Generation
		if last := r.statuses.last(c.UID); last != nil {
			// The progress of a change was written meanwhile.
			before = last
		}
		changed := !equalStatus(before, &c.Status) || agentAway
		if changed && r.Agent != nil {
			r.stampAgent(c, false)
		}
		if changed {
			perr := r.writeStatus(ctx, c)
			if perr != nil && r.Agent != nil {
				// The management plane is away: the stack read last stays
				// applied and repaired; the status is written when it is back.
				log.FromContext(ctx).Info("status not written: management plane unreachable", "error", perr.Error())
				result = ctrl.Result{RequeueAfter: min(r.retryAfterFailure(c), r.Resync)}
				return
			}
			if perr != nil && err == nil {
				err = perr
			}
		}
	}()
	return r.reconcileNormal(ctx, c)
}

// reportedSinceShownAway says whether the agent has written its status
// since the manager showed it away: it need not write it again while the
// manager is yet to show it (or is itself away).
func (r *ClusterReconciler) reportedSinceShownAway(c *v1.Cluster) bool {
	last, cond := r.statuses.last(c.UID), apimeta.FindStatusCondition(c.Status.Conditions, v1.ConditionAgentConnected)
	return last != nil && last.Agent != nil && cond != nil && last.Agent.LastHeartbeatTime.After(cond.LastTransitionTime.Time)
}

// writeStatus writes the cluster's status; an agent writes its report,
// which the manager shows there (report.go). The Cluster read from the
// cache may be older than the one stored (our last status write, a spec
// change): on a conflict the status goes onto the stored one, since the
// status is this controller's alone.
func (r *ClusterReconciler) writeStatus(ctx context.Context, c *v1.Cluster) error {
	status := c.Status.DeepCopy()
	if r.Agent != nil {
		// Without a report to write to, as an earlier version: below.
		err := r.writeReport(ctx, client.ObjectKeyFromObject(c), status)
		if !errors.Is(err, ErrNoReport) {
			if err == nil {
				r.written(c.UID, status)
			}
			return err
		}
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := r.updateStatus(ctx, c)
		if apierrors.IsConflict(err) {
			latest := &v1.Cluster{}
			if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(c), latest); gerr != nil {
				return gerr
			}
			latest.Status = *status.DeepCopy()
			*c = *latest
		}
		return err
	})
	if err == nil {
		r.written(c.UID, status)
	}
	return err
}

// updateStatus writes c's status. On a write of the status the API server
// keeps the managed fields it has, whatever the request carries, so none
// are sent: they were about half of each write, decoded and dropped. The
// answer brings them back into c.
func (r *ClusterReconciler) updateStatus(ctx context.Context, c *v1.Cluster) error {
	c.ManagedFields = nil
	return r.Status().Update(ctx, c)
}

// written remembers the status written for a cluster. An agent remembers
// when it wrote it, too: the manager counts the time the status carries as
// a heartbeat (agentConnection), so the agent's next Lease renewal can wait
// (ReportedAt).
func (r *ClusterReconciler) written(uid types.UID, status *v1.ClusterStatus) {
	r.statuses.remember(uid, status)
	if r.Agent != nil && status.Agent != nil {
		r.reportedAt.Store(status.Agent.LastHeartbeatTime.Unix())
	}
}

// ReportedAt is when an agent last wrote its cluster's status, to the
// second, as the manager reads it; zero before its first write.
func (r *ClusterReconciler) ReportedAt() time.Time {
	if at := r.reportedAt.Load(); at != 0 {
		return time.Unix(at, 0)
	}
	return time.Time{}
}

// Working says whether an agent is working on its cluster: a reconcile is
// under way, and a change it makes ends in a report, which the manager
// counts as a heartbeat — once the API server lets it in, after its
// client's retries when a whole fleet reports at once.
func (r *ClusterReconciler) Working() bool { return r.working.Load() > 0 }

func (r *ClusterReconciler) reconcileNormal(ctx context.Context, c *v1.Cluster) (ctrl.Result, error) {
	if c.Spec.Provider == v1.ProviderLocal {
		if err := r.ensureLocal(ctx, c); err != nil {
			return r.stalled(c, "ProvisionFailed", err), nil
		}
	}
	var capi capiProgress
	if c.Spec.Provider == v1.ProviderCAPI {
		var err error
		if capi, err = r.ensureCAPI(ctx, c); err != nil {
			return r.stalled(c, "ProvisionFailed", err), nil
		}
		if !capi.initialized || capi.upgradingTo != "" {
			return r.provisioning(c, capi), nil
		}
	}
	e, kv, err := r.engineFor(ctx, c, r.layerEvents(ctx, c))
	if err != nil {
		return r.stalled(c, "ClusterUnreachable", err), nil
	}
	c.Status.KubernetesVersion = kv
	resolved, err := r.resolve(ctx, c, kv)
	if err != nil {
		// An invalid change applies nothing; the message is the offline CLI's.
		recordRefusals(c, nil)
		return r.stalled(c, "InvalidStack", err), nil
	}
	recordRefusals(c, resolved.profiles)
	st, profiles := resolved.stack, resolved.profiles
	c.Status.UpdatePolicy = resolved.policy
	plan, err := e.Plan(ctx, st)
	if err != nil {
		return r.stalled(c, "PlanFailed", err), nil
	}
	if plan.Changes() > 0 && resolved.policy == v1.UpdateManual && c.Spec.ApprovedPlan != plan.Digest() {
		// What runs stays as it was; only the newest versions are news.
		c.Status.Profiles = keepRunning(c.Status.Profiles, profiles)
		return r.awaitApproval(ctx, c, e, resolved, plan)
	}
	if capi.held {
		// The approved plan upgrades the k8s layer: Cluster API's to do.
		if _, err := r.applyTopology(ctx, c, st.KubernetesVersion); err != nil {
			return r.stalled(c, "ProvisionFailed", err), nil
		}
	}
	progress, announced := func(engine.Event) {}, func() {}
	if plan.Changes() > 0 {
		// Only for real changes: a resync with nothing to do writes nothing.
		progress, announced = r.announce(ctx, c, plan, profiles)
	}
	applyCtx, applied := r.startApply(ctx, c, resolved, progress)
	res, err := e.Apply(applyCtx, plan)
	applied()
	announced()
	if err != nil {
		return r.stalled(c, "ApplyFailed", err), nil
	}
	c.Status.PendingPlan = nil
	c.Status.Profiles = profiles
	setCondition(c, v1.ConditionUpdatesAvailable, metav1.ConditionFalse, "UpToDate", "the cluster runs the latest plan of its profiles")
	if r.settle(c, resolved, res, nil) {
		// A layer may have failed on a passing outage: try again soon, then
		// less often, and at least every fifth of the resync period.
		return ctrl.Result{RequeueAfter: min(r.retryAfterFailure(c), r.Resync/5)}, nil
	}
	next := r.Resync
	if resolved.refused {
		// A refusal may pass (a pack registry back from an outage): look
		// again, less and less often.
		next = r.retryAfterFailure(c)
	} else {
		r.reached(c)
	}
	if c.Status.Phase == v1.ClusterReady {
		for i := range c.Status.Profiles {
			if v := c.Status.Profiles[i].Version; v != "" {
				c.Status.Profiles[i].LastGood = v
			}
		}
	}
	if res, waiting := r.notAvailable(c, capi); waiting {
		return res, nil
	}
	if r.checkHealth(ctx, c, e, resolved) {
		// A roll-out is watching this cluster: look again soon, so a gate
		// that fails during the soak is seen in time.
		return ctrl.Result{RequeueAfter: min(next, healthRecheck)}, nil
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// recordRefusals says, in the VersionRefused condition, which versions the
// cluster does not take and why; the versions it keeps are in its profiles.
func recordRefusals(c *v1.Cluster, profiles []v1.ProfileStatus) {
	var said []string
	for _, p := range profiles {
		if p.Refused != nil {
			said = append(said, fmt.Sprintf("%s %s is not taken, %s stays: %s", p.Name, p.Refused.Version, p.Version, p.Refused.Reason))
		}
	}
	if len(said) == 0 {
		apimeta.RemoveStatusCondition(&c.Status.Conditions, v1.ConditionVersionRefused)
		return
	}
	setCondition(c, v1.ConditionVersionRefused, metav1.ConditionTrue, "NewerVersionRefused", strings.Join(said, "; "))
}

// healthRecheck is how often a cluster that a roll-out is updating or
// soaking is checked again.
const healthRecheck = 5 * time.Second

// checkHealth runs the health checks of the roll-outs this cluster is in
// (updating or soaking the version it runs) into its status, and says
// whether there were any.
func (r *ClusterReconciler) checkHealth(ctx context.Context, c *v1.Cluster, e stackEngine, resolved *resolution) bool {
	var results []v1.HealthCheckResult
	watched := false
	for _, ps := range c.Status.Profiles {
		for _, p := range resolved.visible {
			if p.Spec.Name != ps.Name || p.Spec.Version != ps.Version || p.Spec.Rollout == nil {
				continue
			}
			if s := rollout.StateOf(p.ClusterProfile, c.Namespace, c.Name); s != v1.ClusterRolloutUpdating && s != v1.ClusterRolloutSoaking {
				continue
			}
			watched = true
			for _, hc := range p.Spec.Rollout.HealthChecks {
				if l, found := resolved.stack.Layer(hc.Layer); found && hc.Object.Namespace == "" {
					hc.Object.Namespace = l.Namespace
				}
				ok, msg := health.Check(ctx, e.Object, hc)
				results = append(results, v1.HealthCheckResult{Profile: p.Spec.Name, Version: p.Spec.Version, Name: hc.Name, Healthy: ok, Message: msg})
			}
		}
	}
	c.Status.HealthChecks = results
	return watched
}

// settle writes what an apply left — the layers, drift, the Reconciling and
// Ready conditions and the phase — and reports whether a layer failed.
// With a pending plan, the changes it holds are waiting, not applied.
func (r *ClusterReconciler) settle(c *v1.Cluster, resolved *resolution, res *engine.Result, pending *engine.Plan) (failed bool) {
	st := resolved.stack
	r.recordLayers(c, st, res, pending)
	r.recordDrift(c, res)
	apimeta.RemoveStatusCondition(&c.Status.Conditions, v1.ConditionStalled)
	reason, message, ready := "Applied", "the cluster runs its stack", fmt.Sprintf("%d layers Ready", len(st.Layers))
	if pending != nil {
		reason, message, ready = "AwaitingApproval", "changes wait for approval", "the running layers are Ready; updates wait for approval"
	}
	setCondition(c, v1.ConditionReconciling, metav1.ConditionFalse, reason, message)
	if res.Failed() {
		c.Status.Phase = v1.ClusterFailed
		setCondition(c, v1.ConditionReady, metav1.ConditionFalse, "LayersFailed", failedLayers(res))
		return true
	}
	if pending != nil && pending.NothingInstalled() {
		// Nothing runs yet: the first install waits for approval.
		c.Status.Phase = v1.ClusterPending
		setCondition(c, v1.ConditionReady, metav1.ConditionFalse, "AwaitingApproval", "nothing is installed yet: the first install waits for approval")
		return false
	}
	if len(resolved.waiting) > 0 {
		// A profile the cluster runs nothing of yet is not there: the
		// cluster is not Ready until its roll-out brings it.
		var waits []string
		for _, name := range slices.Sorted(maps.Keys(resolved.waiting)) {
			waits = append(waits, resolved.waiting[name])
		}
		c.Status.Phase = v1.ClusterPending
		setCondition(c, v1.ConditionReady, metav1.ConditionFalse, "AwaitingRollout", "waiting for "+strings.Join(waits, "; "))
		return false
	}
	c.Status.Phase = v1.ClusterReady
	setCondition(c, v1.ConditionReady, metav1.ConditionTrue, "LayersReady", ready)
	return false
}

// awaitApproval holds a Manual cluster's changes: the plan waits in the
// status, exactly as it will be applied, while the unchanged layers are
// still checked and their drift repaired.
func (r *ClusterReconciler) awaitApproval(ctx context.Context, c *v1.Cluster, e stackEngine, resolved *resolution, plan *engine.Plan) (ctrl.Result, error) {
	pending := pendingPlan(plan)
	byTheProvider(c, pending, resolved.stack)
	if c.Status.PendingPlan == nil || c.Status.PendingPlan.Digest != pending.Digest {
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "UpdatesAvailable", "Plan", "%s; approve with `strata cluster approve %s -n %s`", pending.Summary, c.Name, c.Namespace)
	}
	c.Status.PendingPlan = pending
	setCondition(c, v1.ConditionUpdatesAvailable, metav1.ConditionTrue, "AwaitingApproval", pending.Summary)
	res, err := e.Apply(ctx, plan.Unchanged())
	if err != nil {
		return r.stalled(c, "ApplyFailed", err), nil
	}
	r.reached(c)
	r.settle(c, resolved, res, plan)
	return ctrl.Result{RequeueAfter: r.Resync}, nil
}

func pendingPlan(plan *engine.Plan) *v1.PendingPlan {
	counts := map[engine.Action]int{}
	p := &v1.PendingPlan{Digest: plan.Digest()}
	for _, l := range plan.Layers {
		if l.Action == engine.ActionUnchanged {
			continue
		}
		counts[l.Action]++
		p.Layers = append(p.Layers, v1.PlannedLayer{
			Name: l.Name, Action: string(l.Action), FromVersion: l.FromVersion, ToVersion: l.ToVersion,
			FromDigest: l.FromDigest, ToDigest: l.ToDigest, Reason: l.Reason, ValuesDiff: l.ValuesDiff,
		})
	}
	var parts []string
	for _, a := range []engine.Action{engine.ActionInstall, engine.ActionUpgrade, engine.ActionRemove, engine.ActionRefuse} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", counts[a], a))
		}
	}
	p.Summary = strings.Join(parts, ", ")
	return p
}

// stalled reports a reconcile that cannot go on until something changes —
// an unreachable cluster, an invalid stack — and retries with a backoff
// that doubles up to the resync period. The cluster's own watches bring
// it back sooner when its spec, profiles or kubeconfig Secret change.
func (r *ClusterReconciler) stalled(c *v1.Cluster, reason string, err error) ctrl.Result {
	if unreachable(err) {
		// The engine keeps what it read of the cluster: whichever request
		// comes first finds it gone.
		reason = "ClusterUnreachable"
	}
	c.Status.Phase = v1.ClusterFailed
	setCondition(c, v1.ConditionStalled, metav1.ConditionTrue, reason, err.Error())
	setCondition(c, v1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
	setCondition(c, v1.ConditionReconciling, metav1.ConditionFalse, reason, "waiting for a change or the next retry")
	r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", err.Error())
	return ctrl.Result{RequeueAfter: r.retryAfterFailure(c)}
}

// unreachable tells errors of a cluster that cannot be reached — no
// connection, or none in time — from those it answered with.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
}

func (r *ClusterReconciler) reconcileDelete(ctx context.Context, c *v1.Cluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, Finalizer) {
		return ctrl.Result{}, nil
	}
	if r.Agent != nil {
		return r.agentDelete(ctx, c)
	}
	if c.Spec.Provider == v1.ProviderLocal {
		if err := r.deleteLocal(ctx, c); err != nil {
			return ctrl.Result{}, err
		}
	} else if c.Spec.Provider == v1.ProviderCAPI {
		if retry, err := r.deleteCAPI(ctx, c); retry != nil || err != nil {
			return *retry, err
		}
	} else if c.Annotations[OrphanAnnotation] != "true" {
		if retry, err := r.removeLayers(ctx, c); retry != nil || err != nil {
			return *retry, err
		}
	}
	controllerutil.RemoveFinalizer(c, Finalizer)
	forget(c)
	r.forgetConnection(c)
	r.statuses.forget(c.UID)
	return ctrl.Result{}, r.Update(ctx, c)
}

// removeLayers removes every layer Strata installed on the cluster; a
// non-nil result says when to try again.
func (r *ClusterReconciler) removeLayers(ctx context.Context, c *v1.Cluster) (*ctrl.Result, error) {
	e, _, err := r.engineFor(ctx, c, r.layerEvents(ctx, c))
	if err != nil {
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "ClusterUnreachable", "Delete", "%s", err.Error())
		return &ctrl.Result{RequeueAfter: r.retryAfterFailure(c)}, nil
	}
	plan, err := e.Plan(ctx, &stack.Stack{Cluster: c.Name})
	if err != nil {
		return &ctrl.Result{}, err
	}
	res, err := e.Apply(ctx, plan)
	if err != nil {
		return &ctrl.Result{}, err
	}
	if res.Failed() {
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "RemoveFailed", "Delete", "%s", failedLayers(res))
		return &ctrl.Result{RequeueAfter: r.retryAfterFailure(c)}, nil
	}
	for _, l := range res.Layers {
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "LayerRemoved", layerAction(engine.ActionRemove, l.Name), "layer %s removed", l.Name)
	}
	return nil, nil
}

// agentDelete is the agent's part of a deleted Cluster: remove the layers
// (or leave them, with strata.dev/orphan) and say so in the status, for
// the manager to let the Cluster go.
func (r *ClusterReconciler) agentDelete(ctx context.Context, c *v1.Cluster) (ctrl.Result, error) {
	if c.Status.Agent != nil && c.Status.Agent.LayersRemoved {
		return ctrl.Result{}, nil
	}
	if c.Annotations[OrphanAnnotation] != "true" {
		if retry, err := r.removeLayers(ctx, c); retry != nil || err != nil {
			return *retry, err
		}
	}
	c.Status.Phase = v1.ClusterDeleting
	c.Status.Layers = nil
	r.stampAgent(c, true)
	r.forgetConnection(c)
	return ctrl.Result{}, r.writeStatus(ctx, c)
}

// layerEvents turns the engine's progress into the cluster's events and
// log lines.
func (r *ClusterReconciler) layerEvents(ctx context.Context, c *v1.Cluster) func(engine.Event) {
	logger := log.FromContext(ctx)
	return func(ev engine.Event) {
		r.tellProgress(c, ev)
		logger.Info("layer", "layer", ev.Layer, "action", ev.Action, "phase", ev.Phase, "message", ev.Message)
		if ev.Phase == engine.PhaseFailed {
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "LayerFailed", layerAction(ev.Action, ev.Layer), "layer %s: %s", ev.Layer, ev.Message)
		} else if ev.Action != engine.ActionUnchanged {
			// A layer's action starts with its reason ("upgrade profile
			// web 1.0.0 → 1.1.0") and ends with what it did ("upgrade in 2s").
			note := ev.Message
			if ev.Phase == engine.PhaseInstalling || ev.Phase == engine.PhaseUpgrading || ev.Phase == engine.PhaseRemoving {
				note = string(ev.Action) + " " + ev.Message
			}
			r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "Layer"+string(ev.Phase), layerAction(ev.Action, ev.Layer), "layer %s: %s", ev.Layer, note)
		}
	}
}

// layerAction is an event's action on one layer, "install antrea". The
// recorder folds events of the same object, reason and action into one
// series that keeps the first note: with the action alone, the events of
// every layer installed in a row would show as the first layer's.
func layerAction(a engine.Action, layer string) string {
	return string(a) + " " + layer
}

// resolution is a cluster's stack with what the status and the update
// policy need from the profile versions it picked.
type resolution struct {
	stack    *stack.Stack
	profiles []v1.ProfileStatus
	// policy is the cluster's own update policy, else its profiles'.
	policy v1.UpdatePolicy
	// visible are the profile versions the cluster's project sees.
	visible []profile.Profile
	// waiting says, by profile name, what each attached profile the
	// cluster runs nothing of waits for (a roll-out not at its wave yet).
	waiting map[string]string
	// refused is true when the cluster keeps a version because the newer
	// one its range picks refuses it (in profiles' Refused).
	refused bool
}

// resolve reads the versions of the cluster's attached profiles that its
// project may use — its own namespace's, and the shared namespace's where
// the project has no version of that name — and resolves its stack. A
// project never sees another project's profiles.
func (r *ClusterReconciler) resolve(ctx context.Context, c *v1.Cluster, kv string) (*resolution, error) {
	visible, err := r.visibleProfiles(ctx, c)
	if err != nil {
		return nil, err
	}
	src := profile.Source{File: "cluster " + c.Namespace + "/" + c.Name}
	// Versions on a roll-out move this cluster only when their waves reach
	// it; versions it failed are not picked again.
	gated := c.DeepCopy()
	var rejected map[string][]string
	var waiting map[string]string
	gated.Spec.Profiles, rejected, waiting = rollout.Gate(c, visible)
	resolveWith := func(attachments []v1.ProfileAttachment) (*stack.Stack, error) {
		gated.Spec.Profiles = attachments
		return stack.ResolveStack(visible, profile.Cluster{Cluster: gated, Source: src}, packsFor(r.Registries, r.Packs, c.Namespace), stack.Facts{KubernetesVersion: kv})
	}
	picked := gated.Spec.Profiles
	st, err := resolveWith(picked)
	var refused map[string]v1.RefusedVersion
	if err != nil {
		held, why, ok := rollout.HoldBack(c, picked, visible, resolveWith)
		if !ok {
			return nil, err
		}
		st, refused = held, why
	}
	if err := r.trustCharts(ctx, st, visible); err != nil {
		return nil, err
	}
	res := &resolution{stack: st, profiles: profilesRun(c, st, visible, rejected, refused), policy: c.Spec.UpdatePolicy, visible: visible, waiting: waiting, refused: len(refused) > 0}
	if res.policy == "" {
		res.policy = v1.UpdateAutomatic
		for _, p := range visible {
			if p.Spec.UpdatePolicy == v1.UpdateManual && st.ProfileVersion(p.Spec.Name) == p.Spec.Version {
				res.policy = v1.UpdateManual
			}
		}
	}
	return res, nil
}

// trustCharts builds what checks the signature of each chart layer with
// chart.verify, from the Secrets of the namespace of the profile the layer
// comes from: a shared profile's trust is its own, not a project's.
func (r *ClusterReconciler) trustCharts(ctx context.Context, st *stack.Stack, visible []profile.Profile) error {
	for i := range st.Layers {
		l := &st.Layers[i]
		if l.Spec.Chart == nil || l.Spec.Chart.Verify == nil {
			continue
		}
		i := slices.IndexFunc(visible, func(p profile.Profile) bool {
			return p.Spec.Name == l.Profile && p.Spec.Version == l.ProfileVersion
		})
		if i < 0 {
			return fmt.Errorf("layer %q: profile %s %s is not visible", l.Name, l.Profile, l.ProfileVersion)
		}
		p := visible[i]
		field := fmt.Sprintf("clusterprofile %s/%s: layer %q chart.verify", p.Namespace, p.Name, l.Name)
		trust, err := trustFrom(ctx, r.APIReader, p.Namespace, field, l.Spec.Chart.Verify)
		if err != nil {
			return err
		}
		l.ChartTrust = trust
	}
	return nil
}

func (r *ClusterReconciler) visibleProfiles(ctx context.Context, c *v1.Cluster) ([]profile.Profile, error) {
	return VisibleProfiles(ctx, r.Client, c)
}

// VisibleProfiles lists the versions of the profiles a cluster attaches
// that its project sees: its own, then the shared ones.
func VisibleProfiles(ctx context.Context, r client.Reader, c *v1.Cluster) ([]profile.Profile, error) {
	attached := map[string]bool{}
	for _, a := range c.Spec.Profiles {
		attached[a.Name] = true
	}
	seen := map[string]bool{}
	var visible []profile.Profile
	// The project's own first: its versions hide the shared ones of the
	// same name. A cluster of the shared namespace reads it once.
	for _, ns := range slices.Compact([]string{c.Namespace, SharedNamespace}) {
		var list v1.ClusterProfileList
		if err := r.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for i := range list.Items {
			p := &list.Items[i]
			if !attached[p.Spec.Name] || seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			visible = append(visible, profile.Profile{ClusterProfile: p, Source: profile.Source{File: "clusterprofile " + p.Namespace + "/" + p.Name}})
		}
	}
	return visible, nil
}

// profilesRun lists the version of each attached profile in the stack, the
// newest version visible, the last version run healthy, the versions
// rejected in roll-outs and the version refused, if any.
func profilesRun(c *v1.Cluster, st *stack.Stack, visible []profile.Profile, rejected map[string][]string, refused map[string]v1.RefusedVersion) []v1.ProfileStatus {
	out := make([]v1.ProfileStatus, 0, len(c.Spec.Profiles))
	for _, a := range c.Spec.Profiles {
		ps := v1.ProfileStatus{Name: a.Name, Version: st.ProfileVersion(a.Name), Rejected: rejected[a.Name]}
		if why, ok := refused[a.Name]; ok {
			ps.Refused = &why
		}
		for _, s := range c.Status.Profiles {
			if s.Name == a.Name {
				ps.LastGood = s.LastGood
			}
		}
		var latest *semver.Version
		for _, p := range visible {
			v, err := semver.NewVersion(p.Spec.Version)
			if p.Spec.Name == a.Name && !p.Spec.Draft && err == nil && (latest == nil || v.GreaterThan(latest)) {
				latest, ps.Latest = v, p.Spec.Version
			}
		}
		out = append(out, ps)
	}
	return out
}

// recordLayers writes the layers' phases into the status, keeping the time
// each was last changed. With a pending plan, the layers it would change
// show what runs now and wait as Pending.
func (r *ClusterReconciler) recordLayers(c *v1.Cluster, st *stack.Stack, res *engine.Result, pending *engine.Plan) {
	previous := map[string]v1.LayerStatus{}
	for _, l := range c.Status.Layers {
		previous[l.Name] = l
	}
	results := map[string]engine.LayerResult{}
	for _, l := range res.Layers {
		results[l.Name] = l
	}
	waiting := map[string]engine.LayerPlan{}
	if pending != nil {
		for _, l := range pending.Layers {
			if l.Action != engine.ActionUnchanged {
				waiting[l.Name] = l
			}
		}
	}
	now := metav1.Now()
	var layers []v1.LayerStatus
	for _, l := range st.Layers {
		if w, ok := waiting[l.Name]; ok {
			ls := previous[l.Name]
			if ls.Name == "" {
				ls = v1.LayerStatus{Name: l.Name, Profile: l.Profile, ProfileVersion: l.ProfileVersion, Source: string(l.Source), Package: l.Package}
			}
			ls.Phase, ls.Message = string(engine.PhasePending), fmt.Sprintf("awaiting approval: %s (%s)", w.Action, w.Reason)
			layers = append(layers, ls)
			continue
		}
		lr := results[l.Name]
		ls := v1.LayerStatus{
			Name: l.Name, Profile: l.Profile, ProfileVersion: l.ProfileVersion,
			Source: string(l.Source), Package: l.Package, Version: l.Version, Digest: l.PackDigest,
			Phase: string(lr.Phase), Message: lr.Message, Images: lr.Images,
			LastAppliedTime: previous[l.Name].LastAppliedTime,
		}
		if lr.Action != engine.ActionUnchanged || len(lr.Repaired) > 0 {
			ls.LastAppliedTime = &now
		} else if prev := previous[l.Name]; prev.Phase == ls.Phase && ls.Message == "" {
			// A layer left alone keeps telling what was last done to it,
			// so a resync with nothing to do writes nothing.
			ls.Message = prev.Message
		}
		layers = append(layers, ls)
	}
	c.Status.Layers = layers
}

// recordDrift sets the Drifted condition from the layers that drifted and
// were left alone, and counts repairs.
func (r *ClusterReconciler) recordDrift(c *v1.Cluster, res *engine.Result) {
	var drifted []string
	for _, l := range res.Layers {
		if len(l.Drifted) > 0 {
			drifted = append(drifted, fmt.Sprintf("layer %s: %s", l.Name, strings.Join(l.Drifted, ", ")))
		}
		driftRepairs.Add(float64(len(l.Repaired)))
	}
	if len(drifted) > 0 {
		setCondition(c, v1.ConditionDrifted, metav1.ConditionTrue, "DriftReported", strings.Join(drifted, "; "))
		return
	}
	setCondition(c, v1.ConditionDrifted, metav1.ConditionFalse, "NoDrift", "the workload cluster is as applied")
}

func failedLayers(res *engine.Result) string {
	msg := ""
	for _, l := range res.Layers {
		if l.Phase != engine.PhaseReady && l.Phase != engine.PhaseRemoved {
			if msg != "" {
				msg += "; "
			}
			msg += fmt.Sprintf("layer %s %s: %s", l.Name, l.Phase, l.Message)
		}
	}
	return msg
}

func setCondition(c *v1.Cluster, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: c.Generation,
	})
}

// equalStatus tells whether a reconcile changed the status, so a no-op
// resync writes nothing. SetStatusCondition keeps a condition's time when
// only its message is the same.
func equalStatus(a, b *v1.ClusterStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// reconcilersPerTurn is how many reconciles may run per turn, most of them
// waiting on their clusters: a goroutine each, cheap, where a turn is work.
const reconcilersPerTurn = 16

// concurrentReconciles: reconciles waiting on their clusters hold no turn,
// so many more run than the turns let work. An agent reconciles its one
// Cluster, never twice at once: one is all it needs (and each worker is a
// goroutine, times ten thousand hollow agents in a load test).
func (r *ClusterReconciler) concurrentReconciles() int {
	if r.Agent != nil {
		return 1
	}
	return reconcilersPerTurn * r.Workers
}

// newQueue is the agent's work queue: controller-runtime's, without the
// metrics it keeps and refreshes twice a second, since an agent serves no
// metrics (a hollow agent's would tick ten thousand times in a load test's
// process). nil, the default, for the manager.
func (r *ClusterReconciler) newQueue() func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	if r.Agent == nil {
		return nil
	}
	return func(_ string, limiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		// A queue with no name keeps no metrics.
		return priorityqueue.New("", func(o *priorityqueue.Opts[reconcile.Request]) { o.RateLimiter = limiter })
	}
}

// SetupWithManager watches Clusters, the profiles they attach and the
// kubeconfig Secrets they use — Secrets by metadata only, so the manager
// never holds every Secret of the management plane in memory.
func (r *ClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Resync == 0 {
		r.Resync = 5 * time.Minute
	}
	if r.Workers == 0 {
		r.Workers = 4
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.conns = newConnections()
	r.turns = engine.NewTurns(r.Workers)
	r.renders = engine.NewRenderCache(0)
	r.statuses = &writtenStatuses{byCluster: map[types.UID]*v1.ClusterStatus{}}
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(context.Background(), &v1.Cluster{}, profileIndex, indexProfiles); err != nil {
		return err
	}
	if err := indexer.IndexField(context.Background(), &v1.Cluster{}, profileNameIndex, indexProfileNames); err != nil {
		return err
	}
	if err := indexer.IndexField(context.Background(), &v1.Cluster{}, secretIndex, indexSecret); err != nil {
		return err
	}
	r.wake = make(chan event.GenericEvent, 1024)
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.conns.stopAll()
		return nil
	}))
	if err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		WatchesRawSource(source.Channel(r.wake, &handler.EnqueueRequestForObject{})).
		// A status write, ours included, is no reason to reconcile again.
		For(&v1.Cluster{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&v1.ClusterProfile{}, handler.EnqueueRequestsFromMapFunc(r.clustersUsingProfile), builder.WithPredicates(profileChangesWhatClustersRun)).
		Watches(&v1.PackRegistry{}, handler.EnqueueRequestsFromMapFunc(servedBy(r.Client, func() client.ObjectList { return &v1.ClusterList{} })), builder.WithPredicates(registryChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.concurrentReconciles(), NewQueue: r.newQueue()}).
		Named("cluster")
	if r.Agent != nil {
		// An agent reaches its own cluster, through no Secret; its
		// heartbeat is the agent package's.
		return b.Complete(r)
	}
	// A renewed Lease brings back an agent shown away; a report is shown.
	b = b.Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(r.clusterOfLease)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(clusterOfReport))
	if r.Local != nil {
		err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			r.Local.Supervise(ctx, 2*time.Second, r.localRestarted)
			return nil
		}))
		if err != nil {
			return err
		}
	}
	return watchCAPI(mgr, b).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clustersUsingSecret)).
		Complete(r)
}

const secretIndex = "spec.kubeconfigSecretRef.name"

func indexSecret(o client.Object) []string {
	if ref := KubeconfigRef(o.(*v1.Cluster)); ref != nil {
		return []string{ref.Name}
	}
	return nil
}

// clustersUsingSecret maps a changed Secret to the clusters reached through
// it: new credentials, or a Secret created after its cluster.
func (r *ClusterReconciler) clustersUsingSecret(ctx context.Context, o client.Object) []ctrl.Request {
	return r.clustersMatching(ctx, nil, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretIndex: o.GetName()})
}

// clustersMatching are the clusters the options list, those skip passes
// over left out. The cache's own objects are read, not copied: only their
// names are kept.
func (r *ClusterReconciler) clustersMatching(ctx context.Context, skip func(*v1.Cluster) bool, opts ...client.ListOption) []ctrl.Request {
	var list v1.ClusterList
	if err := r.List(ctx, &list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(list.Items))
	for i := range list.Items {
		if skip == nil || !skip(&list.Items[i]) {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// profileIndex finds the clusters that use a profile version: pinned in
// their spec, or running it (picked by a range).
const profileIndex = "profiles.nameVersion"

func indexProfiles(o client.Object) []string {
	c := o.(*v1.Cluster)
	var keys []string
	for _, p := range c.Spec.Profiles {
		keys = append(keys, p.Name+"-"+p.Version)
	}
	for _, p := range c.Status.Profiles {
		if p.Version != "" && !slices.Contains(keys, p.Name+"-"+p.Version) {
			keys = append(keys, p.Name+"-"+p.Version)
		}
	}
	return keys
}

// profileNameIndex finds the clusters that attach a profile by name, at
// any version or range: a new version of it may concern them.
const profileNameIndex = "spec.profiles.name"

func indexProfileNames(o client.Object) []string {
	c := o.(*v1.Cluster)
	keys := make([]string, 0, len(c.Spec.Profiles))
	for _, p := range c.Spec.Profiles {
		keys = append(keys, p.Name)
	}
	return keys
}

// profileChangesWhatClustersRun lets through the changes of a profile
// version that can change what a cluster runs or shows: its spec, its
// annotations (which steer its roll-out), its roll-out's status and its
// deletion. The rest is bookkeeping: the label and finalizer the manager
// adds and the Valid condition it writes as each version is published, a
// draft's impact written up to every few seconds. Let through, each would
// wake every cluster that attaches the profile — ten thousand agents
// resolving the same version again, twice per version published.
var profileChangesWhatClustersRun = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		a, b := e.ObjectOld.(*v1.ClusterProfile), e.ObjectNew.(*v1.ClusterProfile)
		return a.Generation != b.Generation || !a.DeletionTimestamp.Equal(b.DeletionTimestamp) ||
			!maps.Equal(a.Annotations, b.Annotations) ||
			!equality.Semantic.DeepEqual(a.Status.Rollout, b.Status.Rollout) ||
			!equality.Semantic.DeepEqual(a.Spec, b.Spec)
	},
}

// clustersUsingProfile maps a changed profile version — edited, published
// or deleted — to the clusters that attach that profile at any version: in
// its namespace, or everywhere for a shared profile.
func (r *ClusterReconciler) clustersUsingProfile(ctx context.Context, o client.Object) []ctrl.Request {
	p := o.(*v1.ClusterProfile)
	r.stopFailedApplies(p)
	opts := []client.ListOption{client.MatchingFields{profileNameIndex: p.Spec.Name}}
	if p.Namespace != SharedNamespace {
		opts = append(opts, client.InNamespace(p.Namespace))
	}
	var agentMode func(*v1.Cluster) bool
	if r.Agent == nil && len(profileSecrets(p)) == 0 {
		// An agent resolves its cluster's profiles itself. The manager's
		// part of an agent-mode cluster, its access and its reports
		// shown, changes with a profile only when the profile names
		// Secrets the agent must be let read (an update names the old
		// version too). A new version on ten thousand agents would
		// otherwise queue ten thousand reconciles that change nothing,
		// ahead of the reports they are about to send.
		agentMode = func(c *v1.Cluster) bool { return c.Spec.Mode == v1.ModeAgent }
	}
	return r.clustersMatching(ctx, agentMode, opts...)
}

// keepRunning keeps the versions a cluster runs while its change waits for
// approval — none yet before its first install — taking only the newest
// versions from now.
func keepRunning(running, now []v1.ProfileStatus) []v1.ProfileStatus {
	out := make([]v1.ProfileStatus, 0, len(now))
	for _, p := range now {
		p.Version = ""
		for _, r := range running {
			if r.Name == p.Name {
				p.Version = r.Version
			}
		}
		out = append(out, p)
	}
	return out
}
