// Package engine turns a resolved stack into running objects on a
// Kubernetes cluster, and tells exactly what is there. Every layer is a Helm
// release (render.LayerChart makes one of any layer type), installed and
// upgraded with Helm's SDK using server-side apply; an inventory object per
// stack records what was installed. The CLI's one-shot deploy and the
// controllers use this same engine.
package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/storage"

	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/render"
)

// FieldManager is the server-side apply manager of everything Strata
// writes, Helm's applies included.
const FieldManager = "strata"

// Options configure an Engine.
type Options struct {
	// RESTConfig reaches the workload cluster.
	RESTConfig *rest.Config
	// Timeout bounds the readiness wait of each layer; 5 minutes when zero.
	Timeout time.Duration
	// Events, when set, receives progress as layers are worked on.
	Events func(Event)
	// Log receives Helm's and the engine's diagnostics; discarded when nil.
	Log *slog.Logger
	// Charts fetches the charts of chart layers; a chartsource.Fetcher
	// talking TLS when nil.
	Charts render.ChartFetcher
	// Zarf fetches Zarf packages published to registries; Charts, when it
	// can (a chartsource.Fetcher does), when nil.
	Zarf render.ZarfFetcher
	// Renders, when set, shares rendered layers between the engines of many
	// clusters (see RenderCache); without it each plan renders every layer.
	Renders *RenderCache
	// ReportDrift reports drift in unchanged layers (phase Drifted) instead
	// of repairing it.
	ReportDrift bool
	// Versions, when set, spares the drift check of objects a watch saw
	// nobody write since they were last found as applied.
	Versions ObjectVersions
	// Turns, when set, is shared by engines that take turns to work: the
	// caller holds a turn while it plans and applies, and the engine gives
	// it up while it waits for objects to become ready or go away.
	Turns Turns
}

// Turns lets a few of many engines work at once. An engine waiting on a
// cluster holds no turn, so clusters that are slow to become ready do not
// keep others from being worked on.
type Turns chan struct{}

// NewTurns makes n turns.
func NewTurns(n int) Turns { return make(Turns, n) }

// Take waits for a turn.
func (t Turns) Take() { t <- struct{}{} }

// Give returns a turn taken.
func (t Turns) Give() { <-t }

// waiting runs wait without the engine's turn, when it has one.
func (e *Engine) waiting(wait func()) {
	if e.opts.Turns != nil {
		e.opts.Turns.Give()
		defer e.opts.Turns.Take()
	}
	wait()
}

// sleep waits d, or until ctx ends, without the engine's turn.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	var err error
	e.waiting(func() {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(d):
		}
	})
	return err
}

// Event is one step of progress on a layer.
type Event struct {
	Layer   string
	Action  Action
	Phase   Phase
	Message string
	Time    time.Time
}

// Engine applies stacks to one cluster.
type Engine struct {
	opts      Options
	getter    *restGetter
	clientset *kubernetes.Clientset
	dynamic   dynamic.Interface
	metadata  metadata.Interface
	log       *slog.Logger
	counter   *requestCounter

	mu   sync.Mutex
	caps *common.Capabilities
	// checked holds, by resource and name, the WrittenVersion at which
	// each object of an unchanged layer was last found as applied.
	checked map[string]checkedVersion
	// pass counts Applies; what the last one did not look at is forgotten.
	pass int
}

// New connects an engine to a cluster. It makes no request yet.
func New(opts Options) (*Engine, error) {
	if opts.RESTConfig == nil {
		return nil, fmt.Errorf("engine: Options.RESTConfig is required")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Charts == nil {
		opts.Charts = chartsource.New(chartsource.Options{})
	}
	if z, ok := opts.Charts.(render.ZarfFetcher); ok && opts.Zarf == nil {
		opts.Zarf = z
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := rest.CopyConfig(opts.RESTConfig)
	// The defaults (5 QPS) throttle a large stack more than the API server would.
	cfg.QPS, cfg.Burst = 100, 200
	counter := &requestCounter{}
	cfg.Wrap(counter.wrap)
	cfg.Wrap(smallWrites)
	// Deprecation warnings from the server go to the log, not the terminal.
	cfg.WarningHandler = warningLogger{log}
	getter, err := newRESTGetter(cfg)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// Helm names its field manager after the program unless told.
	kube.ManagedFieldsManager = FieldManager
	return &Engine{opts: opts, getter: getter, clientset: cs, dynamic: dyn, metadata: meta, log: log, counter: counter}, nil
}

// Requests returns how many API requests the engine has made so far.
func (e *Engine) Requests() Requests { return e.counter.snapshot() }

func (e *Engine) emit(ev Event) {
	if e.opts.Events != nil {
		ev.Time = time.Now()
		e.opts.Events(ev)
	}
}

// helm returns a Helm configuration for a change to a release installing
// into ns. It is made for each change and not kept: an engine lives as long
// as its cluster is managed, and what Helm holds (a client set per
// configuration) would otherwise stay for every namespace of every
// cluster. Discovery is the engine's, shared.
// Release records live in InventoryNamespace, not in ns: a layer whose
// chart holds its own namespace deletes that namespace on removal, and its
// release record must not go with it before Helm is done.
func (e *Engine) helm(ns string) (*action.Configuration, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(e.log.Handler()))
	if err := cfg.Init(e.getter.forNamespace(ns), InventoryNamespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm in namespace %s: %w", ns, err)
	}
	records := newReleaseSecrets(e.clientset.CoreV1().Secrets(InventoryNamespace))
	records.SetLogger(cfg.Logger().Handler())
	cfg.Releases = storage.Init(records)
	// Helm's client would build a client set of its own, some sixty REST
	// clients, for each action: it gets the engine's.
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		kc.Factory = sharedClientSet{Factory: kc.Factory, clientset: e.clientset}
	}
	// The cluster's version and APIs as the engine last read them: Helm
	// would otherwise build them again from discovery for every action.
	// A copy, as Helm's options may change the one it is given.
	if caps, err := e.capabilities(); err == nil {
		cfg.Capabilities = caps.Copy()
	}
	return cfg, nil
}

// sharedClientSet is Helm's client factory handing out the engine's
// client set.
type sharedClientSet struct {
	kube.Factory
	clientset *kubernetes.Clientset
}

func (f sharedClientSet) KubernetesClientSet() (*kubernetes.Clientset, error) {
	return f.clientset, nil
}

// capabilities describes the cluster for rendering: its version and the APIs
// it serves, read once per engine.
func (e *Engine) capabilities() (*common.Capabilities, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.caps != nil {
		return e.caps, nil
	}
	sv, err := e.clientset.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("cluster unreachable: %w", err)
	}
	kv, err := common.ParseKubeVersion(sv.GitVersion)
	if err != nil {
		return nil, fmt.Errorf("cluster version %q: %w", sv.GitVersion, err)
	}
	versions, err := action.GetVersionSet(e.getter.discovery)
	if err != nil {
		return nil, fmt.Errorf("cluster APIs: %w", err)
	}
	e.caps = &common.Capabilities{KubeVersion: *kv, APIVersions: versions, HelmVersion: common.DefaultCapabilities.HelmVersion}
	return e.caps, nil
}

// owner names the Helm release an object Strata creates ahead of Helm
// belongs to, so that Helm adopts it instead of refusing it.
type owner struct{ release, namespace string }

func (o *owner) mark(m *metav1.ObjectMeta) {
	if o == nil {
		return
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Labels["app.kubernetes.io/managed-by"] = "Helm"
	m.Annotations["meta.helm.sh/release-name"] = o.release
	m.Annotations["meta.helm.sh/release-namespace"] = o.namespace
}

// LayersAnnotation on a namespace Strata created lists the releases of the
// layers that use it; the namespace is deleted when the last one is
// removed. Namespaces Strata did not create never carry it and are never
// deleted.
const LayersAnnotation = "strata.dev/layers"

// ensureNamespace creates a namespace when missing, with labels (a pack's
// namespaceLabels) and, when the layer's chart holds that namespace, Helm
// ownership. A namespace created for a layer (release not empty) records
// the layers using it. An existing namespace is updated only when a label
// or the release is missing; one still being deleted is waited for.
func (e *Engine) ensureNamespace(ctx context.Context, name string, labels map[string]string, own *owner, release string) error {
	nss := e.clientset.CoreV1().Namespaces()
	ns, err := nss.Get(ctx, name, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp != nil {
		// A layer removed just before left it terminating.
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, e.opts.Timeout, true, func(ctx context.Context) (bool, error) {
			_, err := nss.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
		if err != nil {
			return fmt.Errorf("namespace %s is being deleted: %w", name, err)
		}
		err = apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	if apierrors.IsNotFound(err) {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		own.mark(&ns.ObjectMeta)
		if release != "" {
			metav1.SetMetaDataAnnotation(&ns.ObjectMeta, LayersAnnotation, release)
		}
		if _, err := nss.Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	changed := false
	for k, v := range labels {
		if ns.Labels[k] != v {
			if ns.Labels == nil {
				ns.Labels = map[string]string{}
			}
			ns.Labels[k] = v
			changed = true
		}
	}
	if users, ok := ns.Annotations[LayersAnnotation]; ok && release != "" && !slices.Contains(strings.Split(users, ","), release) {
		ns.Annotations[LayersAnnotation] = users + "," + release
		changed = true
	}
	if changed {
		if _, err := nss.Update(ctx, ns, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("label namespace %s: %w", name, err)
		}
	}
	return nil
}

// releaseNamespaces lets go of the namespaces Strata created that a removed
// layer used: deleted when no other layer uses them, else the release is
// struck from their list.
func (e *Engine) releaseNamespaces(ctx context.Context, release string) error {
	nss := e.clientset.CoreV1().Namespaces()
	list, err := nss.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, ns := range list.Items {
		users, ok := ns.Annotations[LayersAnnotation]
		if !ok || ns.Name == InventoryNamespace || ns.DeletionTimestamp != nil {
			continue
		}
		list := strings.Split(users, ",")
		if !slices.Contains(list, release) {
			continue
		}
		list = slices.DeleteFunc(list, func(s string) bool { return s == release })
		if len(list) == 0 {
			if err := nss.Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete namespace %s: %w", ns.Name, err)
			}
			continue
		}
		ns.Annotations[LayersAnnotation] = strings.Join(list, ",")
		if _, err := nss.Update(ctx, &ns, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
	}
	return nil
}

// warningLogger sends API server warnings to the engine's log.
type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	w.log.Warn("API server warning", "code", code, "text", text)
}

// parseLabels reads "k=v,k2=v2".
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// Refresh forgets what the engine read about the cluster — its version and
// the APIs it serves — so the next plan reads them again. The keeper of a
// long-lived engine calls it when those may have changed: the cluster was
// upgraded, or gained or lost kinds.
func (e *Engine) Refresh() {
	e.mu.Lock()
	e.caps = nil
	e.mu.Unlock()
	e.getter.forget()
}

// KubernetesVersion returns the cluster's version, e.g. "v1.37.2". It is
// the first request an engine makes, so it also tells whether the cluster
// can be reached.
func (e *Engine) KubernetesVersion() (string, error) {
	caps, err := e.capabilities()
	if err != nil {
		return "", err
	}
	return caps.KubeVersion.Version, nil
}
