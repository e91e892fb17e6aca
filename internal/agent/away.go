package agent

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/rest"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/engine"
)

// keepWhileAway serves an agent that starts while its management plane
// cannot be reached: its cache of the desired state cannot fill, so the
// agent keeps the cluster as the plane last had it — the stack the cluster
// records as applied, its drift repaired every resync (or reported, when
// the drift policy recorded with it says so) — and returns once the plane
// answers, for the agent to go on as usual.
func keepWhileAway(ctx context.Context, mgmt *rest.Config, opts Options, log *slog.Logger) error {
	if reachable(ctx, mgmt, opts) {
		return nil
	}
	log.Warn("the management plane cannot be reached: keeping the stack last applied until it can", "cluster", opts.Cluster.String())
	e, err := engine.New(engine.Options{RESTConfig: opts.Workload, Timeout: opts.LayerTimeout, Log: log})
	if err != nil {
		return err
	}
	probe := time.NewTicker(opts.Heartbeat)
	defer probe.Stop()
	var lastRepair time.Time
	for {
		if time.Since(lastRepair) >= opts.Resync {
			repairLastApplied(ctx, e, opts.Cluster.Name, log)
			lastRepair = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-probe.C:
		}
		if reachable(ctx, mgmt, opts) {
			log.Info("the management plane answers again", "cluster", opts.Cluster.String())
			return nil
		}
	}
}

// reachable says whether the agent can read its Cluster on the management
// plane.
func reachable(ctx context.Context, mgmt *rest.Config, opts Options) bool {
	cfg := rest.CopyConfig(mgmt)
	cfg.Timeout = 10 * time.Second
	c, err := managementClient(cfg)
	if err != nil {
		return false
	}
	return c.Get(ctx, opts.Cluster, &v1.Cluster{}) == nil
}

// repairLastApplied applies the stack the cluster records once: drifted
// objects are put back, or only logged under the recorded drift policy
// Report. Failures are logged; the next resync tries again.
func repairLastApplied(ctx context.Context, e *engine.Engine, stack string, log *slog.Logger) {
	plan, err := e.LastApplied(ctx, stack)
	if err != nil {
		log.Warn("the stack last applied cannot be read", "error", err.Error())
		return
	}
	res, err := e.Apply(ctx, plan)
	if err != nil {
		log.Warn("the stack last applied was not kept", "error", err.Error())
		return
	}
	for _, l := range res.Layers {
		if len(l.Repaired) > 0 || l.Phase != engine.PhaseReady {
			log.Info("layer kept while away", "layer", l.Name, "phase", string(l.Phase), "repaired", l.Repaired, "drifted", l.Drifted, "message", l.Message)
		}
	}
}
