// Package clusterapi turns a Strata Cluster of provider capi into a Cluster
// API Cluster with a managed topology, of any provider's ClusterClass, and
// reads back what Cluster API says of it. The Kubernetes version comes from
// the k8s layer; the node pools are the topology's machineDeployments; the
// class's variables are passed as they are. Cluster API and its providers
// realise the os and k8s layers; Strata's engine applies every layer after
// them through the kubeconfig Cluster API writes.
package clusterapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
)

// GroupVersion is the Cluster API version Strata writes.
var GroupVersion = schema.GroupVersion{Group: "cluster.x-k8s.io", Version: "v1beta2"}

// CRDName is the CRD whose absence means Cluster API is not installed.
const CRDName = "clusters.cluster.x-k8s.io"

// FieldOwner is Strata's name in the managed fields of the Clusters it
// applies.
const FieldOwner = "strata"

// KubeconfigKey is the key of the kubeconfig in the Secret Cluster API's
// control plane providers write, <cluster>-kubeconfig.
const KubeconfigKey = "value"

// Object returns an empty Cluster API object of kind.
func Object(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(GroupVersion.WithKind(kind))
	return u
}

// ClassNamespace is the namespace of the cluster's ClusterClass.
func ClassNamespace(c *v1.Cluster) string {
	if c.Spec.CAPI != nil && c.Spec.CAPI.ClassRef.Namespace != "" {
		return c.Spec.CAPI.ClassRef.Namespace
	}
	return c.Namespace
}

// Desired is the Cluster API Cluster a Strata Cluster asks for, running
// Kubernetes kubernetesVersion (the k8s layer's pack version).
func Desired(c *v1.Cluster, kubernetesVersion string) (*unstructured.Unstructured, error) {
	if c.Spec.CAPI == nil {
		return nil, errors.New("spec.capi: required for provider capi (the ClusterClass to make the cluster from)")
	}
	replicas := int64(1)
	if r := c.Spec.CAPI.ControlPlaneReplicas; r != nil {
		replicas = int64(*r)
	}
	deployments := []any{}
	for _, p := range c.Spec.NodePools {
		deployments = append(deployments, map[string]any{"name": p.Name, "class": p.Class, "replicas": int64(p.Count)})
	}
	topology := map[string]any{
		"classRef":     map[string]any{"name": c.Spec.CAPI.ClassRef.Name, "namespace": ClassNamespace(c)},
		"version":      "v" + strings.TrimPrefix(kubernetesVersion, "v"),
		"controlPlane": map[string]any{"replicas": replicas},
		"workers":      map[string]any{"machineDeployments": deployments},
	}
	if len(c.Spec.CAPI.Variables) > 0 {
		vars := []any{}
		for _, v := range c.Spec.CAPI.Variables {
			var value any
			if err := json.Unmarshal(v.Value.Raw, &value); err != nil {
				return nil, fmt.Errorf("spec.capi.variables[%s].value: %w", v.Name, err)
			}
			vars = append(vars, map[string]any{"name": v.Name, "value": value})
		}
		topology["variables"] = vars
	}
	u := Object("Cluster")
	u.SetNamespace(c.Namespace)
	u.SetName(c.Name)
	u.SetLabels(map[string]string{"strata.dev/cluster": c.Name})
	u.Object["spec"] = map[string]any{"topology": topology}
	return u, nil
}

// Check finds what would keep Cluster API from making the cluster, before
// anything is created: Cluster API not installed, a class that is not
// there, a pool whose class the ClusterClass does not have, no k8s layer.
// Each error names the field and what was expected.
func Check(ctx context.Context, mapper meta.RESTMapper, r client.Reader, c *v1.Cluster, kubernetesVersion string) error {
	if c.Spec.CAPI == nil {
		return errors.New("spec.capi: required for provider capi (the ClusterClass to make the cluster from)")
	}
	if kubernetesVersion == "" {
		return errors.New("spec.profiles: provider capi needs an infra or full profile with a k8s layer, whose pack version is the cluster's Kubernetes version")
	}
	if _, err := mapper.RESTMapping(schema.GroupKind{Group: GroupVersion.Group, Kind: "Cluster"}, GroupVersion.Version); err != nil {
		if meta.IsNoMatchError(err) {
			return errors.New("provider capi: Cluster API is not installed on the management plane (no CRD " + CRDName + " serving " + GroupVersion.Version + "); install it, or run `strata up --capi`")
		}
		return err
	}
	class := Object("ClusterClass")
	ref := c.Spec.CAPI.ClassRef
	if err := r.Get(ctx, client.ObjectKey{Namespace: ClassNamespace(c), Name: ref.Name}, class); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("spec.capi.classRef: no ClusterClass %s/%s", ClassNamespace(c), ref.Name)
		}
		return err
	}
	// Cluster API's webhook checks a cluster's variables against a class
	// only once it has reconciled the class; before, it lets any through.
	if err := reconciled(class); err != nil {
		return fmt.Errorf("spec.capi.classRef: ClusterClass %s/%s %w; the cluster waits, so that the class checks its variables", ClassNamespace(c), ref.Name, err)
	}
	workerClasses := WorkerClasses(class)
	for i, p := range c.Spec.NodePools {
		if !slices.Contains(workerClasses, p.Class) {
			what := fmt.Sprintf("class %q", p.Class)
			if p.Class == "" {
				what = "no class"
			}
			return fmt.Errorf("spec.nodePools[%d] (%s): %s is not a worker class of ClusterClass %s/%s: want one of %s",
				i, p.Name, what, ClassNamespace(c), ref.Name, strings.Join(workerClasses, ", "))
		}
	}
	return nil
}

// reconciled says whether Cluster API has reconciled a ClusterClass (its
// generation observed, its variables ready), by the rule its Cluster
// webhook applies.
func reconciled(class *unstructured.Unstructured) error {
	observed, _, _ := unstructured.NestedInt64(class.Object, "status", "observedGeneration")
	if observed != class.GetGeneration() {
		return fmt.Errorf("is not reconciled by Cluster API yet (generation %d, observed %d)", class.GetGeneration(), observed)
	}
	switch ready := meta.FindStatusCondition(conditions(class), "VariablesReady"); {
	case ready == nil:
		return errors.New("is not reconciled by Cluster API yet (no VariablesReady condition)")
	case ready.Status != metav1.ConditionTrue:
		return fmt.Errorf("has variables Cluster API does not accept: %s", oneLine(ready.Message))
	}
	return nil
}

// conditions are a Cluster API object's status.conditions, which its
// v1beta2 objects write as metav1.Conditions; none when they do not read
// as such.
func conditions(u *unstructured.Unstructured) []metav1.Condition {
	var status struct {
		Conditions []metav1.Condition `json:"conditions"`
	}
	if m, ok := u.Object["status"].(map[string]any); ok {
		_ = runtime.DefaultUnstructuredConverter.FromUnstructured(m, &status)
	}
	return status.Conditions
}

// WorkerClasses are the machineDeployment classes a ClusterClass offers.
func WorkerClasses(class *unstructured.Unstructured) []string {
	mds, _, _ := unstructured.NestedSlice(class.Object, "spec", "workers", "machineDeployments")
	var names []string
	for _, md := range mds {
		if m, ok := md.(map[string]any); ok {
			if name, ok := m["class"].(string); ok {
				names = append(names, name)
			}
		}
	}
	return names
}

// Apply creates or updates the Cluster API Cluster, owned by the Strata
// Cluster, and returns it as stored. A change Cluster API refuses (a
// variable the class rejects) comes back as its webhook's message.
func Apply(ctx context.Context, w client.Client, c *v1.Cluster, want *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	want.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(c, v1.GroupVersion.WithKind("Cluster"))})
	//nolint:staticcheck // client.Apply with an unstructured object: Strata owns exactly the fields it sets.
	if err := w.Patch(ctx, want, client.Apply, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		// A schema's refusal is Invalid, a webhook's Forbidden: both are
		// Cluster API's answer to this spec, and say why. Forbidden by RBAC
		// is the manager's own problem and stays as it is.
		var status apierrors.APIStatus
		if errors.As(err, &status) && (apierrors.IsInvalid(err) ||
			apierrors.IsForbidden(err) && strings.Contains(status.Status().Message, "admission webhook")) {
			return nil, fmt.Errorf("cluster API refused the Cluster: %s", status.Status().Message)
		}
		return nil, err
	}
	return want, nil
}

// Observed is what Cluster API says of a Cluster.
type Observed struct {
	Status v1.CAPIStatus
	// Initialized: the control plane answers, the kubeconfig Secret exists.
	Initialized bool
	// Available is Cluster API's Available condition.
	Available metav1.Condition
	// Busy, when not empty, says what Cluster API is still doing to make
	// the topology: an upgrade (TopologyReconciled False) or Machines
	// being replaced (RollingOut True). Available stays True meanwhile.
	Busy string
}

// Observe reads a Cluster API Cluster's status.
func Observe(u *unstructured.Unstructured) Observed {
	var o Observed
	o.Status.Phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
	o.Initialized, _, _ = unstructured.NestedBool(u.Object, "status", "initialization", "controlPlaneInitialized")
	o.Status.ControlPlane = replicas(u, "controlPlane")
	o.Status.Workers = replicas(u, "workers")
	o.Status.Version, _, _ = unstructured.NestedString(u.Object, "spec", "topology", "version")
	o.Available = metav1.Condition{Type: "Available", Status: metav1.ConditionUnknown, Reason: "NotReported", Message: "Cluster API has not reported yet"}
	conds := conditions(u)
	if a := meta.FindStatusCondition(conds, "Available"); a != nil {
		o.Available.Status, o.Available.Reason, o.Available.Message = a.Status, a.Reason, oneLine(a.Message)
	}
	var busy []string
	if t := meta.FindStatusCondition(conds, "TopologyReconciled"); t != nil && t.Status == metav1.ConditionFalse {
		busy = append(busy, withMessage("topology not reconciled ("+t.Reason+")", oneLine(t.Message)))
	}
	if r := meta.FindStatusCondition(conds, "RollingOut"); r != nil && r.Status == metav1.ConditionTrue {
		busy = append(busy, withMessage("rolling out", oneLine(r.Message)))
	}
	o.Busy = strings.Join(busy, "; ")
	return o
}

func withMessage(what, message string) string {
	if message == "" {
		return what
	}
	return what + ": " + message
}

// replicas reads status.<part>.{readyReplicas,desiredReplicas}.
func replicas(u *unstructured.Unstructured, part string) v1.ReplicaCount {
	ready, _, _ := unstructured.NestedInt64(u.Object, "status", part, "readyReplicas")
	desired, _, _ := unstructured.NestedInt64(u.Object, "status", part, "desiredReplicas")
	return v1.ReplicaCount{Ready: int32(ready), Desired: int32(desired)}
}

// Get reads the cluster's Cluster API Cluster; nil when there is none (or
// Cluster API is not installed).
func Get(ctx context.Context, r client.Reader, c *v1.Cluster) (*unstructured.Unstructured, error) {
	u := Object("Cluster")
	err := r.Get(ctx, client.ObjectKeyFromObject(c), u)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ControlPlaneVersion is the Kubernetes version the cluster's control plane
// reports running (status.version of the object spec.controlPlaneRef
// names); empty until it does.
func ControlPlaneVersion(ctx context.Context, mapper meta.RESTMapper, r client.Reader, u *unstructured.Unstructured) string {
	ref, found, _ := unstructured.NestedStringMap(u.Object, "spec", "controlPlaneRef")
	if !found || ref["kind"] == "" || ref["name"] == "" {
		return ""
	}
	cp := &unstructured.Unstructured{}
	// The contract names the group; the version is whichever the CRD's
	// contract label says, and any served one reads the status.
	m, err := mapper.RESTMapping(schema.GroupKind{Group: ref["apiGroup"], Kind: ref["kind"]})
	if err != nil {
		return ""
	}
	cp.SetGroupVersionKind(m.GroupVersionKind)
	if err := r.Get(ctx, client.ObjectKey{Namespace: u.GetNamespace(), Name: ref["name"]}, cp); err != nil {
		return ""
	}
	v, _, _ := unstructured.NestedString(cp.Object, "status", "version")
	return v
}

// Summary is one line of what Cluster API says of a cluster, for the CLI
// and the dashboard: "Provisioned: control plane 1/1, workers 2/2, v1.37.2".
func Summary(s *v1.CAPIStatus) string {
	if s == nil {
		return "not made yet"
	}
	phase := s.Phase
	if phase == "" {
		phase = "Pending"
	}
	out := fmt.Sprintf("%s: control plane %d/%d, workers %d/%d", phase, s.ControlPlane.Ready, s.ControlPlane.Desired, s.Workers.Ready, s.Workers.Desired)
	if s.Version != "" {
		out += ", " + s.Version
	}
	return out
}

// oneLine folds Cluster API's multi-line condition messages ("* A: ...\n*
// B: ...") into one line for conditions and tables.
func oneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		switch {
		case l == "":
		case len(parts) > 0 && strings.HasSuffix(parts[len(parts)-1], ":"):
			// "WorkersAvailable:" heads the lines below it.
			parts[len(parts)-1] += " " + l
		default:
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
