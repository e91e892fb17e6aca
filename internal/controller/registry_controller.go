package controller

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/chartsource"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/stack"
)

// PackRegistryReconciler keeps the manager's set of pack registries in step
// with the PackRegistry objects, and lists each registry's packs every sync
// interval into its status.
type PackRegistryReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Set      *registry.Set
	// ReadOnly keeps the Set in step with the registries without writing
	// their status or events: the manager of a shard, or an agent, where
	// the unsharded manager reports them.
	ReadOnly bool
	// Synced, when set, is called after a registry was listed: a reader
	// that writes no status tells those who resolve packs this way.
	Synced func()
	// SecretsUnwatched: the registries' Secrets are read when a registry
	// syncs, not watched (an agent may read them by name only).
	SecretsUnwatched bool
	// APIReader reads the Secrets a registry names, so the manager does not
	// cache every Secret of the management plane (it watches their
	// metadata only, to sync a registry again when its Secret changes).
	APIReader client.Reader
}

// FollowPackRegistries opens the pack cache in cacheDir (up to cacheSize
// bytes; the cache's default when zero) and returns the set of registries
// that rr keeps in step with the PackRegistry objects, packs found in
// folders coming after the registries'. rr's Client and Set are filled in.
func FollowPackRegistries(mgr ctrl.Manager, cacheDir string, cacheSize int64, folders registry.Packs, rr PackRegistryReconciler) (*registry.Set, error) {
	cache, err := registry.OpenCache(cacheDir, cacheSize)
	if err != nil {
		return nil, err
	}
	rr.Client = mgr.GetClient()
	rr.Set = &registry.Set{Cache: cache, Shared: SharedNamespace, Folders: folders}
	if err := rr.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	return rr.Set, nil
}

// maxStatusEntries bounds the pack versions written into a registry's
// status, so the object stays well within the API's size limit.
const maxStatusEntries = 5000

// maxStatusRefused bounds the refused pack versions a status lists.
const maxStatusRefused = 100

// defaultSyncInterval lists a registry's packs again when the spec says nothing.
const defaultSyncInterval = 10 * time.Minute

// Reconcile connects to the registry, lists its packs and writes Ready.
func (r *PackRegistryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pr := &v1.PackRegistry{}
	if err := r.Get(ctx, req.NamespacedName, pr); err != nil {
		if apierrors.IsNotFound(err) {
			r.Set.Delete(req.Namespace, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	interval := defaultSyncInterval
	if pr.Spec.SyncInterval != nil && pr.Spec.SyncInterval.Duration > 0 {
		interval = pr.Spec.SyncInterval.Duration
	}
	cond := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Synced", ObservedGeneration: pr.Generation}
	status := pr.Status.DeepCopy()
	reg, err := r.connect(ctx, pr)
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "InvalidSpec", err.Error()
		r.Set.Delete(pr.Namespace, pr.Name)
	} else {
		r.Set.Put(pr.Namespace, pr.Name, pr.Spec.Priority, reg)
		listCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		entries, err := reg.List(listCtx, r.Set.Cache)
		cancel()
		if err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, registry.Reason(err), err.Error()
		} else {
			names := map[string]bool{}
			for _, e := range entries {
				names[e.Name] = true
			}
			status.Packs, status.Versions = int32(len(names)), int32(len(entries))
			status.Entries, status.Truncated = nil, len(entries) > maxStatusEntries
			for i, e := range entries {
				if i == maxStatusEntries {
					break
				}
				status.Entries = append(status.Entries, v1.PackEntry{Name: e.Name, Version: e.Version, Layer: e.Layer, Digest: e.Digest})
			}
			cond.Message = fmt.Sprintf("%d packs, %d versions", len(names), len(entries))
			now := metav1.Now()
			status.LastSyncTime = &now
			status.Refused = nil
			refused, err := reg.Refused(ctx, r.Set.Cache)
			for i, rf := range refused {
				if i == maxStatusRefused {
					break
				}
				status.Refused = append(status.Refused, v1.RefusedPack{Name: rf.Name, Version: rf.Version, Digest: rf.Digest, Reason: rf.Reason})
			}
			if len(refused) > 0 {
				cond.Message += fmt.Sprintf("; %d refused for their signature", len(refused))
			}
			if err != nil {
				cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, registry.Reason(err), err.Error()
			}
		}
	}
	if r.ReadOnly {
		if r.Synced != nil && cond.Status == metav1.ConditionTrue {
			r.Synced()
		}
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	before := apimeta.FindStatusCondition(pr.Status.Conditions, v1.ConditionReady)
	if cond.Status == metav1.ConditionFalse && (before == nil || before.Message != cond.Message) {
		r.Recorder.Eventf(pr, nil, corev1.EventTypeWarning, cond.Reason, "Sync", "%s", cond.Message)
	}
	apimeta.SetStatusCondition(&status.Conditions, cond)
	status.ObservedGeneration = pr.Generation
	pr.Status = *status
	if err := r.Status().Update(ctx, pr); apierrors.IsConflict(err) {
		// The object changed meanwhile (a spec edit, an annotation): sync again
		// on the new version soon rather than after a whole interval.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// connect builds a client from the spec and the Secrets it names. Secret
// values never reach a message.
func (r *PackRegistryReconciler) connect(ctx context.Context, pr *v1.PackRegistry) (*registry.Registry, error) {
	opts := registry.Options{PlainHTTP: pr.Spec.PlainHTTP, InsecureSkipTLSVerify: pr.Spec.InsecureSkipTLSVerify, Credentials: &registry.Credentials{}}
	if ref := pr.Spec.CredentialsSecretRef; ref != nil {
		s := &corev1.Secret{}
		if err := r.secrets().Get(ctx, types.NamespacedName{Namespace: pr.Namespace, Name: ref.Name}, s); err != nil {
			return nil, fmt.Errorf("spec.credentialsSecretRef: Secret %s/%s: %w", pr.Namespace, ref.Name, err)
		}
		opts.Credentials = &registry.Credentials{Username: string(s.Data["username"]), Password: string(s.Data["password"]), Token: string(s.Data["token"])}
		if opts.Credentials.Token == "" && (opts.Credentials.Username == "" || opts.Credentials.Password == "") {
			return nil, fmt.Errorf("spec.credentialsSecretRef: Secret %s/%s: want the keys username and password, or token", pr.Namespace, ref.Name)
		}
	}
	if ref := pr.Spec.CASecretRef; ref != nil {
		s := &corev1.Secret{}
		if err := r.secrets().Get(ctx, types.NamespacedName{Namespace: pr.Namespace, Name: ref.Name}, s); err != nil {
			return nil, fmt.Errorf("spec.caSecretRef: Secret %s/%s: %w", pr.Namespace, ref.Name, err)
		}
		if opts.CAPEM = s.Data["ca.crt"]; len(opts.CAPEM) == 0 {
			return nil, fmt.Errorf("spec.caSecretRef: Secret %s/%s: want the key ca.crt (PEM)", pr.Namespace, ref.Name)
		}
	}
	if v := pr.Spec.Verify; v != nil {
		var err error
		if opts.Verifier, err = r.verifier(ctx, pr.Namespace, v); err != nil {
			return nil, err
		}
	}
	return registry.New(registry.Endpoint{Host: pr.Spec.Endpoint, Base: pr.Spec.BaseContentPath}, opts)
}

// verifier builds what checks a registry's signatures. Anything wrong
// with it is an error: a registry is never trusted by accident.
func (r *PackRegistryReconciler) verifier(ctx context.Context, namespace string, v *v1.SignatureVerification) (signature.Verifier, error) {
	return trustFrom(ctx, r.secrets(), namespace, "spec.verify", v)
}

// trustFrom builds a verifier from a verify stanza whose Secrets are in
// namespace; field is the stanza's path, which every error names.
func trustFrom(ctx context.Context, secrets client.Reader, namespace, field string, v *v1.SignatureVerification) (signature.Verifier, error) {
	secret := func(ref string, name string) (*corev1.Secret, error) {
		s := &corev1.Secret{}
		if err := secrets.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s); err != nil {
			return nil, fmt.Errorf("%s.%s: Secret %s/%s: %w", field, ref, namespace, name, err)
		}
		return s, nil
	}
	switch v.Provider {
	case v1.SignatureCosign:
		ref := v.PublicKeySecretRef
		if ref == nil {
			return nil, fmt.Errorf("%s.publicKeySecretRef: provider cosign needs the Secret holding its public key", field)
		}
		key := cmp.Or(ref.Key, "cosign.pub")
		s, err := secret("publicKeySecretRef", ref.Name)
		if err != nil {
			return nil, err
		}
		if len(s.Data[key]) == 0 {
			return nil, fmt.Errorf("%s.publicKeySecretRef: Secret %s/%s has no key %q", field, namespace, ref.Name, key)
		}
		c, err := signature.NewCosign(s.Data[key])
		if err != nil {
			return nil, fmt.Errorf("%s.publicKeySecretRef: key %q of Secret %s/%s: %w", field, key, namespace, ref.Name, err)
		}
		return c, nil
	case v1.SignatureNotation:
		if v.TrustPolicySecretRef == nil || v.TrustStoreSecretRef == nil {
			return nil, fmt.Errorf("%s: provider notation needs trustPolicySecretRef and trustStoreSecretRef", field)
		}
		ref := v.TrustPolicySecretRef
		key := cmp.Or(ref.Key, "trustpolicy.json")
		policy, err := secret("trustPolicySecretRef", ref.Name)
		if err != nil {
			return nil, err
		}
		if len(policy.Data[key]) == 0 {
			return nil, fmt.Errorf("%s.trustPolicySecretRef: Secret %s/%s has no key %q", field, namespace, ref.Name, key)
		}
		store, err := secret("trustStoreSecretRef", v.TrustStoreSecretRef.Name)
		if err != nil {
			return nil, err
		}
		certs := maps.Clone(store.Data)
		if store.Name == policy.Name {
			delete(certs, key) // one Secret may hold both
		}
		n, err := signature.NewNotation(policy.Data[key], certs)
		if err != nil {
			return nil, fmt.Errorf("%s: Secrets %s/%s and %s/%s: %w", field, namespace, ref.Name, namespace, store.Name, err)
		}
		return n, nil
	default:
		return nil, fmt.Errorf("%s.provider: %q: want cosign or notation", field, v.Provider)
	}
}

// SetupWithManager registers the reconciler.
func (r *PackRegistryReconciler) secrets() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *PackRegistryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1.PackRegistry{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{})))
	if !r.SecretsUnwatched {
		b = b.Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.registriesNaming), builder.OnlyMetadata)
	}
	return b.Complete(r)
}

// registriesNaming lists the registries of a Secret's namespace that take
// their credentials or CA from it, so a changed password or CA is used at
// once rather than at the next sync.
func (r *PackRegistryReconciler) registriesNaming(ctx context.Context, secret client.Object) []ctrl.Request {
	var list v1.PackRegistryList
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace())); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, pr := range list.Items {
		if slices.Contains(secretsNamed(pr.Spec.CredentialsSecretRef, pr.Spec.CASecretRef, pr.Spec.Verify), secret.GetName()) {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&pr)})
		}
	}
	return reqs
}

// secretsNamed lists the Secrets a registry's credentials, CA and verify
// name (a chart layer's verify: nil, nil, verify).
func secretsNamed(credentials, ca *v1.LocalObjectRef, v *v1.SignatureVerification) []string {
	var names []string
	for _, ref := range []*v1.LocalObjectRef{credentials, ca} {
		if ref != nil {
			names = append(names, ref.Name)
		}
	}
	if v != nil {
		if v.PublicKeySecretRef != nil {
			names = append(names, v.PublicKeySecretRef.Name)
		}
		if v.TrustPolicySecretRef != nil {
			names = append(names, v.TrustPolicySecretRef.Name)
		}
		if v.TrustStoreSecretRef != nil {
			names = append(names, v.TrustStoreSecretRef.Name)
		}
	}
	return names
}

// servedBy lists the objects of a kind a registry serves: those of its
// namespace, or of every namespace for a registry of the shared one. The
// cluster and profile controllers watch registries through it, status
// included, so they resolve again once a registry has been (re)connected.
func servedBy(c client.Client, newList func() client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []ctrl.Request {
		list := newList()
		var opts []client.ListOption
		if o.GetNamespace() != SharedNamespace {
			opts = append(opts, client.InNamespace(o.GetNamespace()))
		}
		if err := c.List(ctx, list, opts...); err != nil {
			return nil
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return nil
		}
		var reqs []ctrl.Request
		for _, it := range items {
			if obj, ok := it.(client.Object); ok {
				reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
			}
		}
		return reqs
	}
}

// registryChanged lets through what changes what a registry serves — its
// spec, its readiness, its pack versions and digests — and not a routine
// sync that found the same, so syncs do not wake every cluster.
var registryChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*v1.PackRegistry)
	n, ok2 := e.ObjectNew.(*v1.PackRegistry)
	if !ok1 || !ok2 {
		return true
	}
	ready := func(p *v1.PackRegistry) string {
		if c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionReady); c != nil {
			return string(c.Status) + c.Reason + c.Message
		}
		return ""
	}
	return o.Generation != n.Generation || ready(o) != ready(n) || !reflect.DeepEqual(o.Status.Entries, n.Status.Entries)
}}

// packsFor is what a project's clusters and profiles resolve packs from:
// its registries and the shared ones, then the manager's folders.
func packsFor(set *registry.Set, folders stack.Packs, namespace string) stack.Packs {
	if set == nil {
		return folders
	}
	return set.For(namespace)
}

// zarfDir keeps Zarf packages pulled from registries beside the pack cache,
// so every cluster's connection shares them and they outlive a restart;
// empty (in memory) without a cache.
func (r *ClusterReconciler) zarfDir() string {
	if r.Registries == nil || r.Registries.Cache == nil {
		return ""
	}
	return filepath.Join(r.Registries.Cache.Dir(), "zarf")
}

// chartAccess lets a project's chart and Zarf layers on OCI use the credentials and
// TLS settings of a pack registry it sees on the same host.
func (r *ClusterReconciler) chartAccess(namespace string) func(host string) (chartsource.HostAccess, bool) {
	return func(host string) (chartsource.HostAccess, bool) {
		if r.Registries == nil {
			return chartsource.HostAccess{}, false
		}
		reg, ok := r.Registries.OnHost(namespace, host)
		if !ok {
			return chartsource.HostAccess{}, false
		}
		return reg.HostAccess(), true
	}
}
