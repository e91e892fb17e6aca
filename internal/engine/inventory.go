package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/stack"
)

// InventoryNamespace holds one inventory ConfigMap per stack.
const InventoryNamespace = "strata-system"

const inventoryKey = "inventory.json"

// Inventory records, on the cluster itself, what Strata installed for a
// stack, so that a later run from any machine knows what to upgrade or
// remove. Helm's release records hold the objects of each layer.
type Inventory struct {
	Stack string `json:"stack"`
	// ReportDrift records the drift policy of the last apply: an agent
	// that cannot reach its management plane keeps to it. Recorded with
	// the first layer applied after it changed, unchanged layers included.
	ReportDrift bool             `json:"reportDrift,omitempty"`
	Layers      []InventoryLayer `json:"layers"`
}

// InventoryLayer is one installed layer.
type InventoryLayer struct {
	Name           string `json:"name"`
	Profile        string `json:"profile"`
	ProfileVersion string `json:"profileVersion"`
	Kind           string `json:"kind"`
	Source         string `json:"source"`
	Package        string `json:"package,omitempty"`
	Version        string `json:"version,omitempty"`
	ReleaseName    string `json:"releaseName"`
	Namespace      string `json:"namespace"`
	// Digest identifies the rendered objects and chart; a change means an upgrade.
	Digest string `json:"digest"`
	// PackDigest is the digest of the pack archive, for a pack from a registry.
	PackDigest string `json:"packDigest,omitempty"`
	// Values as applied (masked values redacted), for the plan's values diff.
	Values map[string]any `json:"values,omitempty"`
}

func inventoryName(stack string) string { return "stack-" + stack }

// Layer returns the recorded layer of that name.
func (inv *Inventory) Layer(name string) (InventoryLayer, bool) {
	for _, l := range inv.Layers {
		if l.Name == name {
			return l, true
		}
	}
	return InventoryLayer{}, false
}

func (e *Engine) readInventory(ctx context.Context, stack string) (*Inventory, error) {
	cm, err := e.clientset.CoreV1().ConfigMaps(InventoryNamespace).Get(ctx, inventoryName(stack), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &Inventory{Stack: stack}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory %s/%s: %w", InventoryNamespace, inventoryName(stack), err)
	}
	inv := &Inventory{}
	if err := json.Unmarshal([]byte(cm.Data[inventoryKey]), inv); err != nil {
		return nil, fmt.Errorf("inventory %s/%s is corrupt: %w", InventoryNamespace, inventoryName(stack), err)
	}
	return inv, nil
}

// writeInventory stores the inventory, and does nothing when it is unchanged:
// a no-op apply makes no write.
func (e *Engine) writeInventory(ctx context.Context, before, after *Inventory) error {
	if reflect.DeepEqual(before, after) {
		return nil
	}
	if err := e.ensureNamespace(ctx, InventoryNamespace, nil, nil, ""); err != nil {
		return err
	}
	data, err := json.Marshal(after)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: inventoryName(after.Stack), Namespace: InventoryNamespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "strata", "strata.dev/stack": after.Stack},
		},
		Data: map[string]string{inventoryKey: string(data)},
	}
	cms := e.clientset.CoreV1().ConfigMaps(InventoryNamespace)
	existing, err := cms.Get(ctx, cm.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
	case err == nil:
		existing.Data = cm.Data
		existing.Labels = cm.Labels
		_, err = cms.Update(ctx, existing, metav1.UpdateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("write inventory %s/%s: %w", InventoryNamespace, cm.Name, err)
	}
	return nil
}

// LastApplied plans the stack as it was last applied, from what the
// cluster itself records — the inventory, and each layer's Helm release
// with its rendered objects — every layer unchanged, so that Apply checks
// its objects for drift and repairs them. It needs neither profiles nor
// packs: an agent that cannot reach its management plane keeps its
// cluster as the plane last had it. Objects Helm does not record (a
// chart's crds/ folder) are not in it; nor is a layer whose release is
// gone, which a plan from the profiles installs again. Drift is only
// reported when the policy recorded with the inventory says so.
func (e *Engine) LastApplied(ctx context.Context, stackName string) (*Plan, error) {
	inv, err := e.readInventory(ctx, stackName)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Stack: stackName}
	for _, rec := range inv.Layers {
		if rec.Digest == "failed" {
			continue // half-applied: nothing known to keep
		}
		cfg, err := e.helm(rec.Namespace)
		if err != nil {
			return nil, err
		}
		last, err := cfg.Releases.Deployed(rec.ReleaseName)
		if errors.Is(err, driver.ErrNoDeployedReleases) || errors.Is(err, driver.ErrReleaseNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: release %s/%s: %w", rec.Name, rec.Namespace, rec.ReleaseName, err)
		}
		rel, ok := last.(*releasev1.Release)
		if !ok {
			continue
		}
		objs, err := parseObjects(rel.Manifest)
		if err != nil {
			return nil, fmt.Errorf("layer %s: release %s/%s: %w", rec.Name, rec.Namespace, rec.ReleaseName, err)
		}
		objs = e.defaultNamespaces(objs, rec.Namespace)
		plan.Layers = append(plan.Layers, LayerPlan{
			Name: rec.Name, Action: ActionUnchanged, FromVersion: rec.Version, ToVersion: rec.Version, Objects: len(objs),
			layer: stack.Layer{Name: rec.Name, Profile: rec.Profile, ProfileVersion: rec.ProfileVersion, Package: rec.Package,
				Version: rec.Version, ReleaseName: rec.ReleaseName, Namespace: rec.Namespace},
			recorded: rec, objects: objs, digest: rec.Digest, reportDrift: inv.ReportDrift,
		})
	}
	return plan, nil
}
