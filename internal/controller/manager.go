package controller

import (
	"os"
	"runtime/debug"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/provider/local"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/stack"
)

// ManagerOptions configure the management plane's controller manager.
type ManagerOptions struct {
	// Packs the profiles' layers use: the folders given to the manager.
	Packs stack.Packs
	// PackCacheDir turns PackRegistry objects on: packs pulled from them are
	// kept there (the manager's volume). Empty: folders only.
	PackCacheDir string
	// PackCacheSize bounds the cache; 2 GiB when zero.
	PackCacheSize int64
	// MetricsAddr serves Prometheus metrics; "0" turns them off.
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz; "0" turns them off.
	HealthAddr string
	// LeaderElection lets several replicas run, one active (per shard).
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease; the manager's own namespace
	// when it runs in a cluster.
	LeaderElectionNamespace string
	// Shard, when set, makes this manager reconcile only the Clusters
	// labelled strata.dev/shard=<Shard>, under a Lease of its own, so a
	// fleet can be spread over replicas; without it the manager takes the
	// Clusters with no shard label and runs the profile, roll-out and
	// registry reconcilers, which see the whole fleet.
	Shard string
	// LayerTimeout bounds each layer's readiness wait.
	LayerTimeout time.Duration
	// Resync is how often a Ready cluster is checked for drift.
	Resync time.Duration
	// Workers is how many clusters are worked on at once (those waiting
	// for their objects to become ready do not count); 4 when zero.
	Workers int
	// Local runs the clusters of provider local (`strata up`); without it
	// they are reported Stalled.
	Local *local.Provider
	// AnnounceAfter is how long a change runs before a cluster's status
	// says it is under way; 2 s when zero. A change done sooner is written
	// once, with its outcome.
	AnnounceAfter time.Duration
	// QPS and Burst bound the manager's requests to the management plane;
	// 300 and 600 when zero (client-go's 5, or controller-runtime's 20, would
	// make a thousand clusters' first reconciles queue for minutes; at 100,
	// registering agent-mode clusters, nine requests each, stalled at 11 a
	// second). The API server's flow control protects it.
	QPS   float32
	Burst int
	// SeveralPerProcess allows more than one manager in a process (tests);
	// controller-runtime otherwise refuses duplicate controller names.
	SeveralPerProcess bool
}

// Scheme knows the Kubernetes types and Strata's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1.AddToScheme(s)
	return s
}

// NewManager returns a manager with Strata's reconcilers, not yet started.
func NewManager(cfg *rest.Config, opts ManagerOptions) (ctrl.Manager, error) {
	registerMetrics.Do(func() {
		metrics.Registry.MustRegister(layersByPhase, updatesPending, driftRepairs, workloadRequests, rolloutClusters, rollbacks)
	})
	collectSooner()
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "0"
	}
	if opts.HealthAddr == "" {
		opts.HealthAddr = "0"
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = 300
	}
	if cfg.Burst == 0 {
		cfg.Burst = 2 * int(cfg.QPS)
	}
	leaseName := "strata-manager.strata.dev"
	// Of Leases and ConfigMaps, the manager holds only its agents' Leases
	// and reports.
	cacheOpts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Label: heartbeatLeases()},
			&corev1.ConfigMap{}:     {Label: agentReports()},
		},
		// The manager reads no object's managed fields; at ten thousand
		// Clusters, with their agents' reports and Leases, they would be a
		// good part of what its cache holds.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if opts.Shard != "" {
		leaseName = "strata-manager-" + opts.Shard + ".strata.dev"
		// A shard's manager holds only its own Clusters.
		cacheOpts.ByObject[&v1.Cluster{}] = cache.ByObject{Label: labels.SelectorFromSet(labels.Set{ShardLabel: opts.Shard})}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.HealthAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        leaseName,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		Controller:              config.Controller{SkipNameValidation: &opts.SeveralPerProcess},
	})
	if err != nil {
		return nil, err
	}
	var set *registry.Set
	if opts.PackCacheDir != "" {
		// Every manager keeps its set of registries; the unsharded one
		// reports them.
		set, err = FollowPackRegistries(mgr, opts.PackCacheDir, opts.PackCacheSize, opts.Packs,
			PackRegistryReconciler{Recorder: mgr.GetEventRecorder("strata"), ReadOnly: opts.Shard != ""})
		if err != nil {
			return nil, err
		}
	}
	r := &ClusterReconciler{
		Client: mgr.GetClient(), Packs: opts.Packs, Registries: set,
		LayerTimeout: opts.LayerTimeout, Resync: opts.Resync, Workers: opts.Workers, Local: opts.Local,
		Recorder: mgr.GetEventRecorder("strata"), Shard: opts.Shard, AnnounceAfter: opts.AnnounceAfter,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if opts.Shard != "" {
		return mgr, nil
	}
	ro := &RolloutReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("strata")}
	if err := ro.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	pr := &ProfileReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("strata"), Packs: opts.Packs, Registries: set}
	if err := pr.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ir := &ImpactReconciler{Client: mgr.GetClient(), Packs: opts.Packs, Registries: set, Refusals: r.refusals}
	if err := ir.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	return mgr, nil
}

// managerGCPercent is the heap growth, over what survived the last
// collection, that starts the next one in a manager process. A manager
// holds little per cluster (a connection, watch streams, a few fields per
// object) and allocates much more in passing: Helm's work on a change.
// At Go's default 100 its peak during a fleet's change was about twice
// what it holds; at 50 the peak per added cluster fell from 2.6 to 2.0
// MiB with 20 clusters, for no CPU the benchmark could tell apart
// (BenchmarkFleetProfileChange).
const managerGCPercent = 50

// collectSooner sets the process's collection target for a manager,
// unless GOGC says otherwise.
func collectSooner() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(managerGCPercent)
	}
}
