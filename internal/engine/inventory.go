package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InventoryNamespace holds one inventory ConfigMap per stack.
const InventoryNamespace = "strata-system"

const inventoryKey = "inventory.json"

// Inventory records, on the cluster itself, what Strata installed for a
// stack, so that a later run from any machine knows what to upgrade or
// remove. Helm's release records hold the objects of each layer.
type Inventory struct {
	Stack  string           `json:"stack"`
	Layers []InventoryLayer `json:"layers"`
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
