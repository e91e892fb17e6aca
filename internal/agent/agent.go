// Package agent is `strata agent`: it runs beside an agent-mode cluster
// that the management plane cannot reach, reads that cluster's desired
// state from the management plane over outbound HTTPS, applies it with the
// same engine and reconciler the manager uses in push mode, and reports
// the cluster's status and a heartbeat back.
//
// The agent resolves and renders the stack itself, from the profiles it
// reads and its own packs: the manager then does no work per agent
// cluster, a cluster's Kubernetes version and APIs are read where they
// are, and the last desired state stays in the agent's cache, applied and
// repaired, while the management plane is away.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/engine"
	"strata.dev/strata/internal/stack"
)

// Options configure an agent.
type Options struct {
	// Cluster is the agent-mode Cluster the agent serves.
	Cluster types.NamespacedName
	// Join, when its Token is set, registers the agent; without it the
	// agent uses the credentials it stored when it registered.
	Join Join
	// Workload reaches the cluster the agent manages.
	Workload *rest.Config
	// CredentialsNamespace of the managed cluster keeps the agent's
	// credentials (Secret strata-agent); DefaultCredentialsNamespace when
	// empty.
	CredentialsNamespace string
	// Packs the profiles' layers use: folders.
	Packs stack.Packs
	// PackCacheDir turns the PackRegistry objects of the cluster's project
	// and the shared namespace on, as in the manager: packs pulled from
	// them are kept there. Empty: folders only.
	PackCacheDir string
	// Heartbeat is how often the agent reports; 30 s when zero.
	Heartbeat time.Duration
	// Resync is how often the stack is checked for drift; 5 minutes when zero.
	Resync time.Duration
	// LayerTimeout bounds each layer's readiness wait.
	LayerTimeout time.Duration
	// TokenLifetime of the agent's own token, renewed at four fifths of
	// it; 24 hours when zero.
	TokenLifetime time.Duration
	// CacheSyncTimeout bounds how long the agent's controllers wait for
	// their first reads of the management plane before they start again;
	// 30 minutes when zero. Meanwhile client-go reads again, less and less
	// often, what the plane refused; controllers started again would read
	// everything again, and on a busy plane thousands of agents doing so
	// keep it busy (controller-runtime waits 2 minutes).
	CacheSyncTimeout time.Duration
	// Version of strata, reported in the status.
	Version string
	// Log receives the agent's diagnostics; discarded when nil.
	Log *slog.Logger
	// ManagementTransport, when set, wraps every request the agent makes
	// to the management plane once registered (a load test counts them).
	ManagementTransport func(http.RoundTripper) http.RoundTripper
	// Hollow, for load tests, runs the agent without a cluster (Workload
	// unset): it resolves, plans and reports as a real agent does, and
	// applying records the plan in memory (engine.Hollow).
	Hollow bool
}

// hollowKubernetesVersion is what a hollow agent's cluster reports.
const hollowKubernetesVersion = "v1.37.2"

// Run registers the agent if it must, then serves its cluster until ctx
// ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Workload == nil && !opts.Hollow {
		return errors.New("agent: Options.Workload is required")
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 30 * time.Second
	}
	// The status counts heartbeats in whole seconds.
	opts.Heartbeat = max(opts.Heartbeat.Round(time.Second), time.Second)
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = 24 * time.Hour
	}
	if opts.Resync == 0 {
		opts.Resync = 5 * time.Minute
	}
	if opts.CacheSyncTimeout == 0 {
		opts.CacheSyncTimeout = 30 * time.Minute
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var workload kubernetes.Interface
	if !opts.Hollow {
		cs, err := kubernetes.NewForConfig(opts.Workload)
		if err != nil {
			return err
		}
		workload = cs
	}
	if opts.CredentialsNamespace == "" {
		opts.CredentialsNamespace = DefaultCredentialsNamespace
	}
	// Credentials kept from an earlier registration win over a join token:
	// an agent restarted with the flags it was first started with (a
	// Deployment's) goes on, instead of failing on its spent token. A join
	// token serves when there are none, or they expired.
	kept := types.NamespacedName{Namespace: opts.CredentialsNamespace, Name: CredentialsSecret}
	creds, err := loadCredentials(ctx, workload, opts.Cluster, kept)
	switch {
	case err != nil && !errors.Is(err, errNotRegistered):
		return err
	case err == nil && time.Now().Before(creds.expiry()):
	case opts.Join.Token == "" && err == nil:
		return fmt.Errorf("the agent's credentials expired at %s: start it with a new join token (`strata cluster join-command %s -n %s`)", creds.expiry().UTC().Format(time.RFC3339), opts.Cluster.Name, opts.Cluster.Namespace)
	case opts.Join.Token == "":
		return err
	default:
		opts.Join.Cluster = opts.Cluster
		if creds, err = register(ctx, opts.Join, opts.TokenLifetime, kept); err != nil {
			return err
		}
		if err := creds.store(ctx, workload); err != nil {
			return fmt.Errorf("registered, but the credentials could not be kept in the cluster: %w", err)
		}
		log.Info("registered", "cluster", opts.Cluster.String(), "server", creds.server)
	}
	creds.wrap = opts.ManagementTransport
	go creds.renew(ctx, workload, opts.TokenLifetime, func(err error) {
		log.Warn("token not renewed; trying again in a minute", "error", err.Error())
	})
	if !opts.Hollow {
		if err := keepWhileAway(ctx, creds.config(), opts, log); err != nil || ctx.Err() != nil {
			return err
		}
	}
	// Controllers that stop on their own — their caches not filled in time
	// from a plane too busy to answer, say — start again after a pause that
	// grows with each failure in a row: an agent at the edge has no one to
	// restart it. What ends an agent for good (its Cluster gone, its
	// credentials refused) readAttached finds first.
	delay := time.Second
	for {
		followed, err := readAttached(ctx, creds.config(), opts, log)
		if err != nil {
			return err
		}
		mgr, err := newManager(creds.config(), opts, log, followed)
		if err != nil {
			return err
		}
		runCtx, stop := context.WithCancel(ctx)
		var changed atomic.Bool
		if err := stopWhenAttachmentsChange(runCtx, mgr, followed, stop, &changed, log); err != nil {
			stop()
			return err
		}
		err = mgr.Start(runCtx)
		stop()
		switch {
		case ctx.Err() != nil:
			return err
		case changed.Load():
			delay = time.Second
		case err != nil:
			wait := delay + rand.N(delay/2+1)
			log.Warn("the agent's controllers stopped; starting them again", "in", wait.Round(time.Second).String(), "error", err.Error())
			pause(ctx, wait)
			delay = min(2*delay, maxRestartDelay)
		default:
			return nil
		}
	}
}

// cacheOptions are the agent's cache: its own Cluster, the versions of the
// profiles followed, and the registries, in its project's namespace and the
// shared one. Its watches are quiet (no bookmarks), but for its Cluster's:
// the API server keeps only the newest events of all Clusters, which at
// thousands of agents reporting are minutes old, so a watch of one Cluster
// reopened without bookmarks from its last change (hours old) is refused
// as too old, and the agent lists its Cluster again — each a walk of the
// project's RoleBindings. A bookmark a minute keeps where it resumes fresh.
func cacheOptions(cluster types.NamespacedName, followed []string) cache.Options {
	return quiet(cache.Options{
		DefaultNamespaces: map[string]cache.Config{cluster.Namespace: {}, controller.SharedNamespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&v1.Cluster{}: {
				Namespaces:           map[string]cache.Config{cluster.Namespace: {FieldSelector: fields.OneTermEqualSelector("metadata.name", cluster.Name)}},
				EnableWatchBookmarks: ptr.To(true),
			},
			&v1.ClusterProfile{}: {Label: profilesNamed(followed)},
		},
	})
}

// maxRestartDelay bounds the pause before the agent's controllers start
// again after they stopped on their own.
const maxRestartDelay = time.Minute

// newManager is a controller manager on the management plane, as the
// agent: its cache holds the agent's own Cluster, the versions of the
// profiles it follows (in its project and the shared namespace) and the
// registries there.
func newManager(mgmt *rest.Config, opts Options, log *slog.Logger, followed []string) (ctrl.Manager, error) {
	// Controller names are checked unique per process for their metrics;
	// an agent serves none, and several agents may share a process (tests,
	// the hollow agents of a load test) or follow each other in it.
	skipNameCheck := true
	mgr, err := ctrl.NewManager(mgmt, ctrl.Options{
		Scheme:                 scheme(),
		MapperProvider:         newKnownFirst,
		Logger:                 logr.FromSlogHandler(log.Handler()),
		Cache:                  cacheOptions(opts.Cluster, followed),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skipNameCheck, CacheSyncTimeout: opts.CacheSyncTimeout},
	})
	if err != nil {
		return nil, err
	}
	r := &controller.ClusterReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Packs: opts.Packs,
		LayerTimeout: opts.LayerTimeout, Resync: opts.Resync, Workers: 1,
		Recorder: mgr.GetEventRecorder("strata-agent"),
		Agent: &controller.AgentRole{Cluster: opts.Cluster, Heartbeat: opts.Heartbeat, Version: opts.Version,
			Follows: func(c *v1.Cluster) bool { return slices.Equal(attachedNames(c), followed) }},
		Workload: opts.Workload,
	}
	if opts.Hollow {
		r.Hollow = engine.NewHollow(hollowKubernetesVersion)
	}
	if opts.PackCacheDir != "" {
		// The agent reads the registries as the manager does, reports
		// nothing on them, and resolves again once one has synced.
		r.Registries, err = controller.FollowPackRegistries(mgr, opts.PackCacheDir, 0, opts.Packs,
			controller.PackRegistryReconciler{Recorder: mgr.GetEventRecorder("strata-agent"), ReadOnly: true, SecretsUnwatched: true, Synced: r.WakeAgent})
		if err != nil {
			return nil, err
		}
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	beat := &heartbeat{opts: opts, cached: mgr.GetClient(), direct: mgr.GetAPIReader(), writer: mgr.GetClient(), wake: r.WakeAgent, reported: r.ReportedAt, working: r.Working}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		beat.run(ctx)
		return nil
	})); err != nil {
		return nil, err
	}
	return mgr, nil
}
