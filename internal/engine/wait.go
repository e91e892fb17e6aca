package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// resource returns the client for an object, and its namespace as Helm
// would set it (the layer's, for a namespaced object that names none).
func (e *Engine) resource(o object, layerNS string) (dynamic.ResourceInterface, string, error) {
	ri, _, ns, err := e.resourceOf(o, layerNS)
	return ri, ns, err
}

// resourceOf is resource, with the object's API resource.
func (e *Engine) resourceOf(o object, layerNS string) (dynamic.ResourceInterface, schema.GroupVersionResource, string, error) {
	gvk := o.GroupVersionKind()
	m, err := e.getter.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, schema.GroupVersionResource{}, "", fmt.Errorf("%s: %w", o, err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return e.dynamic.Resource(m.Resource), m.Resource, "", nil
	}
	ns := o.GetNamespace()
	if ns == "" {
		ns = layerNS
	}
	return e.dynamic.Resource(m.Resource).Namespace(ns), m.Resource, ns, nil
}

// Readiness checks read each pending object; they start fast, since most
// objects are ready within moments, and back off to spare the API server.
const (
	firstPoll    = 20 * time.Millisecond
	maxPoll      = 500 * time.Millisecond
	pollInterval = maxPoll
)

// waitReady waits until every object of the layer is Ready by kstatus, or
// the timeout passes. It returns notes about objects that can never be
// Ready on a simulated cluster, instead of waiting for them forever.
func (e *Engine) waitReady(ctx context.Context, lp *LayerPlan) ([]string, error) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	pending := map[string]object{}
	for _, o := range lp.objects {
		if !o.hook {
			pending[o.String()] = o
		}
	}
	notes := map[string]string{}
	last := map[string]string{}
	wait := firstPoll
	for {
		for key, o := range pending {
			ready, why, note, err := e.objectReady(ctx, o, lp.layer.Namespace)
			if err != nil {
				return nil, err
			}
			switch {
			case ready:
				delete(pending, key)
				delete(last, key)
			case note != "":
				delete(pending, key)
				notes[key] = note
			default:
				last[key] = why
			}
		}
		if len(pending) == 0 {
			if len(notes) == 0 {
				return nil, nil
			}
			return []string{fmt.Sprintf("%d APIServices not Available, as expected on simulated nodes whose pods serve no API: %s",
				len(notes), strings.Join(sortedValues(notes), ", "))}, nil
		}
		if e.sleep(ctx, wait) != nil {
			var why []string
			for key := range pending {
				why = append(why, key+": "+last[key])
			}
			sort.Strings(why)
			// The caller may stop the wait before the layer's own timeout,
			// and say why (a roll-out that failed the cluster).
			stopped := fmt.Sprintf("not Ready after %s", time.Since(started).Round(time.Second))
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, context.Canceled) {
				stopped += " (" + cause.Error() + ")"
			}
			return nil, fmt.Errorf("%s: %s", stopped, strings.Join(why, "; "))
		}
		wait = min(2*wait, maxPoll)
	}
}

// readyOnceThere are kinds that have no status to wait for: kstatus finds
// them Current as soon as they exist and are not being deleted (a
// Service's cluster IP is given when it is created).
var readyOnceThere = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}: true, {Kind: "Secret"}: true, {Kind: "ServiceAccount"}: true,
	{Kind: "Service"}: true, {Kind: "Namespace"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}: true, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: true, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}: true,
}

var crdKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// objectReady computes one object's readiness with kstatus. An object that
// a watch sees is ready without a request when its kind has no status,
// when it is a CRD whose kinds the cluster serves (it serves them once the
// CRD is established: a CRD holds its whole schema, the largest read of
// most stacks), or when nothing about it changed since it was found ready.
func (e *Engine) objectReady(ctx context.Context, o object, layerNS string) (ready bool, why, note string, err error) {
	ri, gvr, ns, err := e.resourceOf(o, layerNS)
	if err != nil {
		return false, "", "", err
	}
	key := checkKey(gvr, ns, o.GetName())
	if e.opts.Versions != nil {
		seen, known := e.opts.Versions.Seen(gvr, ns, o.GetName())
		if known && !seen.Terminating {
			gk := o.GroupVersionKind().GroupKind()
			if readyOnceThere[gk] || gk == crdKind && e.servesKindsOf(o) || seen.ResourceVersion != "" && e.readyAt(key) == seen.ResourceVersion {
				return true, "", "", nil
			}
		}
	}
	live, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// It was applied moments ago: someone deleted it. Waiting cannot
		// bring it back; the next apply repairs it (or reports it).
		return false, "", "", fmt.Errorf("%s is missing: deleted after it was applied", o)
	}
	if err != nil {
		return false, "", "", fmt.Errorf("%s: %w", o, err)
	}
	if o.GetKind() == "APIService" {
		return e.apiServiceReady(ctx, o, live)
	}
	res, err := status.Compute(live)
	if err != nil {
		return false, "", "", fmt.Errorf("%s: %w", o, err)
	}
	switch res.Status {
	case status.CurrentStatus:
		if e.opts.Versions != nil {
			e.markReady(key, live.GetResourceVersion())
		}
		return true, "", "", nil
	case status.FailedStatus:
		return false, "Failed: " + res.Message, "", nil
	}
	return false, string(res.Status) + ": " + res.Message, "", nil
}

// servesKindsOf says whether the cluster's APIs, as last read, include
// the kind of a CRD at every version it serves.
func (e *Engine) servesKindsOf(crd object) bool {
	e.mu.Lock()
	caps := e.caps
	e.mu.Unlock()
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	// Not NestedSlice: that copies the versions, schemas and all.
	field, _, _ := unstructured.NestedFieldNoCopy(crd.Object, "spec", "versions")
	versions, _ := field.([]any)
	if caps == nil || group == "" || kind == "" {
		return false
	}
	served := 0
	for _, v := range versions {
		m, _ := v.(map[string]any)
		name, _ := m["name"].(string)
		if m["served"] != true {
			continue
		}
		if !caps.APIVersions.Has(group + "/" + name + "/" + kind) {
			return false
		}
		served++
	}
	return served > 0
}

// apiServiceReady wants an aggregated API Available. kstatus does not read
// that condition, so it is checked here.
func (e *Engine) apiServiceReady(ctx context.Context, o object, live *unstructured.Unstructured) (ready bool, why, note string, err error) {
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	reason := "no Available condition yet"
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Available" {
			continue
		}
		if m["status"] == "True" {
			return true, "", "", nil
		}
		reason = fmt.Sprintf("Available=%v (%v)", m["status"], m["reason"])
	}
	if e.simulated(ctx) {
		// Fake pods serve nothing, so an aggregated API never gets endpoints.
		return false, "", fmt.Sprintf("%s (%s)", o.GetName(), reason), nil
	}
	return false, reason, "", nil
}

// simulated reports whether the cluster's nodes are kwok's fake nodes.
func (e *Engine) simulated(ctx context.Context) bool {
	nodes, err := e.clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	return err == nil && len(nodes.Items) > 0 && nodes.Items[0].Annotations["kwok.x-k8s.io/node"] == "fake"
}

// establishCRDs creates the layer's new CRDs and waits until they are
// established, before custom resources of the same layer need them. CRDs
// that exist are left to Helm, which checks whose they are.
func (e *Engine) establishCRDs(ctx context.Context, lp *LayerPlan) error {
	var crds []object
	for _, o := range lp.objects {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		ri, _, err := e.resource(o, "")
		if err != nil {
			return err
		}
		if _, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{}); apierrors.IsNotFound(err) {
			crds = append(crds, o)
		} else if err != nil {
			return fmt.Errorf("%s: %w", o, err)
		}
	}
	if len(crds) == 0 {
		return nil
	}
	for _, crd := range crds {
		if err := e.applyObject(ctx, lp.owned(crd), lp.layer.Namespace, false); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	for _, crd := range crds {
		for {
			ready, why, _, err := e.objectReady(ctx, crd, "")
			if err != nil {
				return err
			}
			if ready {
				break
			}
			if e.sleep(ctx, pollInterval) != nil {
				return fmt.Errorf("%s not established: %s", crd, why)
			}
		}
	}
	// New kinds: forget what discovery said before, so that Helm renders
	// this layer knowing them.
	e.Refresh()
	return nil
}

// applyObject server-side applies one object as Strata, taking over fields
// others changed; with dryRun it only returns what the result would be.
func (e *Engine) applyObject(ctx context.Context, o object, layerNS string, dryRun bool) error {
	_, err := e.applyObjectResult(ctx, o, layerNS, dryRun)
	return err
}

func (e *Engine) applyObjectResult(ctx context.Context, o object, layerNS string, dryRun bool) (*unstructured.Unstructured, error) {
	ri, ns, err := e.resource(o, layerNS)
	if err != nil {
		return nil, err
	}
	obj := o.DeepCopy()
	if ns != "" {
		obj.SetNamespace(ns)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue()}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", o, err)
	}
	return out, nil
}

func ptrTrue() *bool { t := true; return &t }

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Object reads one object of the cluster as it is now, e.g. for a
// roll-out's health checks.
func (e *Engine) Object(ctx context.Context, apiVersion, kind, namespace, name string) (*unstructured.Unstructured, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	m, err := e.getter.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, err
	}
	ri := dynamic.ResourceInterface(e.dynamic.Resource(m.Resource))
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = e.dynamic.Resource(m.Resource).Namespace(namespace)
	}
	return ri.Get(ctx, name, metav1.GetOptions{})
}
