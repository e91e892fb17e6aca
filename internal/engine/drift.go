package engine

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"slices"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"strata.dev/strata/internal/stack"
)

// Drift is one object of a layer that is not as applied.
type Drift struct {
	Object string `json:"object"`
	// Missing is true when the object is gone; otherwise Fields lists the
	// top-level paths whose values differ from what Strata applies.
	Missing bool     `json:"missing,omitempty"`
	Fields  []string `json:"fields,omitempty"`

	obj object
	key string
}

func (d Drift) String() string {
	if d.Missing {
		return d.Object + " is missing"
	}
	return fmt.Sprintf("%s changed (%v)", d.Object, d.Fields)
}

// drift compares each object of a layer with what a server-side apply of
// it would produce (a dry run, so nothing changes). Fields Strata does not
// set are not its business; fields it sets that someone changed are drift.
//
// With Options.Versions, an object nobody wrote since it was last found
// as applied — its WrittenVersion, as a watch last saw it, unchanged — is
// not checked again: a resync of a stack nobody touched makes no request
// for drift.
func (e *Engine) drift(ctx context.Context, lp *LayerPlan) ([]Drift, error) {
	var out []Drift
	for _, o := range lp.objects {
		if o.hook {
			continue
		}
		ri, gvr, ns, err := e.resourceOf(o, lp.layer.Namespace)
		if err != nil {
			return nil, err
		}
		key, unchanged := e.unchangedSinceChecked(gvr, ns, o.GetName(), lp.digest)
		if unchanged {
			continue
		}
		live, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out = append(out, Drift{Object: o.String(), Missing: true, obj: o})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o, err)
		}
		want, err := e.applyObjectResult(ctx, lp.owned(o), lp.layer.Namespace, true)
		if err != nil {
			return nil, err
		}
		if fields := differingFields(live, want); len(fields) > 0 {
			out = append(out, Drift{Object: o.String(), Fields: fields, obj: o, key: key})
			continue
		}
		e.markChecked(key, WrittenVersion(live), lp.digest)
	}
	return out, nil
}

// ObjectVersions tells what a watch last saw of an object; known is false
// for objects it does not watch or has not seen.
type ObjectVersions interface {
	Seen(gvr schema.GroupVersionResource, namespace, name string) (seen SeenObject, known bool)
}

// SeenObject is what a metadata watch knows of an object.
type SeenObject struct {
	// Version is its WrittenVersion.
	Version string
	// ResourceVersion changes with any write, status too.
	ResourceVersion string
	// Terminating says it is being deleted.
	Terminating bool
}

// Seeing describes an object's metadata as a watch sees it.
func Seeing(o metav1.Object) SeenObject {
	return SeenObject{Version: WrittenVersion(o), ResourceVersion: o.GetResourceVersion(), Terminating: o.GetDeletionTimestamp() != nil}
}

// WrittenVersion identifies the last write to what an object is meant to
// be. Where the API counts generations, it is the generation with the
// labels and annotations: controllers writing status (a Deployment's,
// every few seconds while it rolls) leave it as it is, so such objects
// are not checked again for that; nor for the annotations that only count
// pod template changes: the revision the Deployment controller notes after
// each, and the DaemonSet's template generation, which the API server
// adds when it serves a whole DaemonSet but not its metadata alone.
// Elsewhere it is the resourceVersion.
func WrittenVersion(o metav1.Object) string {
	if o.GetGeneration() == 0 {
		return o.GetResourceVersion()
	}
	h := fnv.New64a()
	for _, m := range []map[string]string{o.GetLabels(), o.GetAnnotations()} {
		keys := slices.Sorted(maps.Keys(m))
		for _, k := range keys {
			if templateCounts[k] {
				continue
			}
			fmt.Fprintf(h, "%q=%q,", k, m[k])
		}
		h.Write([]byte{0})
	}
	return fmt.Sprintf("g%d-%x", o.GetGeneration(), h.Sum64())
}

// templateCounts are annotations that count changes to a pod template,
// which its object's generation counts too.
var templateCounts = map[string]bool{
	"deployment.kubernetes.io/revision":        true,
	"deprecated.daemonset.template.generation": true,
}

// checkedVersion is an object's WrittenVersion when it was last found as
// the layer of that digest applies it, and the Apply that last looked at it.
type checkedVersion struct {
	rv, digest string
	pass       int
	// readyAt is the resourceVersion at which the object was last found
	// ready: while it has not changed, neither has its status.
	readyAt string
}

// unchangedSinceChecked says whether the object is, by its watched
// written version, as it was when last found (or made) as a layer of that
// digest applies it; key names it for markChecked.
func (e *Engine) unchangedSinceChecked(gvr schema.GroupVersionResource, ns, name, digest string) (key string, unchanged bool) {
	if e.opts.Versions == nil {
		return "", false
	}
	key = checkKey(gvr, ns, name)
	seen, known := e.opts.Versions.Seen(gvr, ns, name)
	e.mu.Lock()
	defer e.mu.Unlock()
	last, ok := e.checked[key]
	if ok {
		last.pass = e.pass
		e.checked[key] = last
	}
	return key, known && ok && last.rv == seen.Version && last.digest == digest
}

func checkKey(gvr schema.GroupVersionResource, ns, name string) string {
	return gvr.String() + " " + ns + "/" + name
}

// markChecked records an object found as its layer applies it, unchanged.
func (e *Engine) markChecked(key, rv, digest string) { e.mark(key, rv, digest, false) }

// markWritten records an object as Strata just wrote it for its layer.
// Whether it is ready is to be found again: a watch may not have seen the
// write yet, and would show the version at which it was last ready.
func (e *Engine) markWritten(key, rv, digest string) { e.mark(key, rv, digest, true) }

func (e *Engine) mark(key, rv, digest string, written bool) {
	if key == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.checked == nil {
		e.checked = map[string]checkedVersion{}
	}
	c := checkedVersion{rv: rv, digest: digest, pass: e.pass}
	if !written {
		c.readyAt = e.checked[key].readyAt
	}
	e.checked[key] = c
}

// markReady records the resourceVersion at which an object was found ready.
func (e *Engine) markReady(key, resourceVersion string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.checked == nil {
		e.checked = map[string]checkedVersion{}
	}
	c := e.checked[key]
	c.readyAt, c.pass = resourceVersion, e.pass
	e.checked[key] = c
}

// readyAt is the resourceVersion at which the object was last found ready,
// if it was.
func (e *Engine) readyAt(key string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.checked[key]
	if !ok {
		return ""
	}
	c.pass = e.pass
	e.checked[key] = c
	return c.readyAt
}

// startPass begins an Apply: objects it does not look at are forgotten
// when it ends (forgetUnseen), so what removed layers held does not stay.
func (e *Engine) startPass() {
	e.mu.Lock()
	e.pass++
	e.mu.Unlock()
}

func (e *Engine) forgetUnseen() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, c := range e.checked {
		if c.pass != e.pass {
			delete(e.checked, key)
		}
	}
}

// differingFields lists the paths (two levels deep) where two versions of an
// object differ, ignoring bookkeeping the server changes on every write.
func differingFields(live, want *unstructured.Unstructured) []string {
	a, b := normalize(live), normalize(want)
	var out []string
	for _, k := range unionKeys(a, b) {
		av, bv := a[k], b[k]
		if reflect.DeepEqual(av, bv) {
			continue
		}
		am, aok := av.(map[string]any)
		bm, bok := bv.(map[string]any)
		if !aok || !bok {
			out = append(out, k)
			continue
		}
		for _, k2 := range unionKeys(am, bm) {
			if !reflect.DeepEqual(am[k2], bm[k2]) {
				out = append(out, k+"."+k2)
			}
		}
	}
	return out
}

func normalize(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy().Object
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c, "metadata", f)
	}
	return c
}

func unionKeys(a, b map[string]any) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// repair re-applies only the drifted objects.
func (e *Engine) repair(ctx context.Context, lp *LayerPlan, drifts []Drift) error {
	for _, d := range drifts {
		applied, err := e.applyObjectResult(ctx, lp.owned(d.obj), lp.layer.Namespace, false)
		if err != nil {
			return fmt.Errorf("repair %s: %w", d.Object, err)
		}
		e.markWritten(d.key, WrittenVersion(applied), lp.digest)
		lp.repaired = append(lp.repaired, d.String())
	}
	return nil
}

// Diff plans a stack and checks every layer the plan leaves unchanged for
// drift. Nothing changes on the cluster.
func (e *Engine) Diff(ctx context.Context, st *stack.Stack) (*Plan, map[string][]Drift, error) {
	plan, err := e.Plan(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	drifts := map[string][]Drift{}
	for i := range plan.Layers {
		lp := &plan.Layers[i]
		if lp.Action != ActionUnchanged {
			continue
		}
		d, err := e.drift(ctx, lp)
		if err != nil {
			return nil, nil, err
		}
		if len(d) > 0 {
			drifts[lp.Name] = d
		}
	}
	return plan, drifts, nil
}
