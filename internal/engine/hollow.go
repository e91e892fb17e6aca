package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"strata.dev/strata/internal/stack"
)

// Hollow plans and applies stacks for a cluster that is not there, as
// kubemark's hollow nodes run the real kubelet without containers: the
// inventory lives in memory and applying a plan changes only it, every
// layer ending Ready. Load tests run many real agents on one machine with
// it, to measure the management plane; it proves nothing about applying.
type Hollow struct {
	kubeVersion string

	mu  sync.Mutex
	inv Inventory
}

// NewHollow is a hollow cluster of that Kubernetes version.
func NewHollow(kubeVersion string) *Hollow { return &Hollow{kubeVersion: kubeVersion} }

// KubernetesVersion is the version the hollow cluster reports.
func (h *Hollow) KubernetesVersion() string { return h.kubeVersion }

// Plan compares the stack with the hollow inventory. A layer's digest is
// that of its resolved inputs: nothing is rendered.
func (h *Hollow) Plan(_ context.Context, st *stack.Stack) (*Plan, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	plan := &Plan{Stack: st.Cluster}
	desired := map[string]bool{}
	for _, l := range st.Layers {
		desired[l.Name] = true
	}
	for i := len(h.inv.Layers) - 1; i >= 0; i-- {
		if rec := h.inv.Layers[i]; !desired[rec.Name] {
			plan.Layers = append(plan.Layers, LayerPlan{Name: rec.Name, Action: ActionRemove, FromVersion: rec.Version, recorded: rec, Reason: "no longer in the stack"})
		}
	}
	for _, l := range st.Layers {
		lp := LayerPlan{Name: l.Name, layer: l, ToVersion: l.Version, ToDigest: l.PackDigest}
		inputs, err := json.Marshal(l.Redacted())
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Name, err)
		}
		sum := sha256.Sum256(inputs)
		lp.digest = hex.EncodeToString(sum[:])
		rec, installed := h.inv.Layer(l.Name)
		switch {
		case !installed:
			lp.Action, lp.Reason = ActionInstall, "new layer"
		case rec.Digest != lp.digest:
			lp.recorded, lp.FromVersion, lp.FromDigest = rec, rec.Version, rec.PackDigest
			lp.Action, lp.Reason = ActionUpgrade, changeReason(rec, l)
		default:
			lp.recorded, lp.FromVersion, lp.Action = rec, rec.Version, ActionUnchanged
		}
		plan.Layers = append(plan.Layers, lp)
	}
	return plan, nil
}

// Apply records the plan in the hollow inventory; every layer is Ready.
func (h *Hollow) Apply(_ context.Context, plan *Plan) (*Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := &Result{Stack: plan.Stack}
	for i := range plan.Layers {
		lp := &plan.Layers[i]
		phase := PhaseReady
		switch lp.Action {
		case ActionRemove:
			h.inv.remove(lp.Name)
			phase = PhaseRemoved
		case ActionInstall, ActionUpgrade:
			h.inv.put(lp.inventoryLayer())
		}
		res.Layers = append(res.Layers, LayerResult{Name: lp.Name, Action: lp.Action, Phase: phase})
	}
	return res, nil
}

// Object finds nothing: a hollow cluster runs no objects.
func (h *Hollow) Object(_ context.Context, apiVersion, kind, _, name string) (*unstructured.Unstructured, error) {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	return nil, apierrors.NewNotFound(gv.WithResource(kind).GroupResource(), name)
}
