package clusterapi_test

import (
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/provider/clusterapi"
)

// The topology is exactly what the contract names: the class, the
// k8s layer's version with a v, the control plane's replicas, a
// machineDeployment per pool, the variables as they are.
func TestDesiredTopology(t *testing.T) {
	c := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "prod-eu-1"},
		Spec: v1.ClusterSpec{
			Provider: v1.ProviderCAPI,
			CAPI: &v1.CAPISpec{
				ClassRef:             v1.ClassRef{Name: "aws-eks"},
				ControlPlaneReplicas: ptr.To[int32](3),
				Variables: []v1.CAPIVariable{
					{Name: "region", Value: apiextensionsv1.JSON{Raw: []byte(`"eu-west-1"`)}},
					{Name: "tags", Value: apiextensionsv1.JSON{Raw: []byte(`{"team":"a","cost":7}`)}},
				},
			},
			NodePools: []v1.NodePool{{Name: "workers", Count: 2, Class: "default-worker"}, {Name: "gpu", Count: 0, Class: "gpu-worker"}},
		},
	}
	u, err := clusterapi.Desired(c, "1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "cluster.x-k8s.io/v1beta2" || u.GetKind() != "Cluster" || u.GetNamespace() != "team-a" || u.GetName() != "prod-eu-1" {
		t.Errorf("object %s %s %s/%s", u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
	}
	topology, _, _ := unstructured.NestedMap(u.Object, "spec", "topology")
	want := map[string]any{
		// The class is in the cluster's namespace when none is named.
		"classRef":     map[string]any{"name": "aws-eks", "namespace": "team-a"},
		"version":      "v1.37.2",
		"controlPlane": map[string]any{"replicas": int64(3)},
		"workers": map[string]any{"machineDeployments": []any{
			map[string]any{"name": "workers", "class": "default-worker", "replicas": int64(2)},
			map[string]any{"name": "gpu", "class": "gpu-worker", "replicas": int64(0)},
		}},
		"variables": []any{
			map[string]any{"name": "region", "value": "eu-west-1"},
			map[string]any{"name": "tags", "value": map[string]any{"team": "a", "cost": float64(7)}},
		},
	}
	if !reflect.DeepEqual(topology, want) {
		t.Errorf("topology:\n got %v\nwant %v", topology, want)
	}
	c.Spec.CAPI.ControlPlaneReplicas = nil
	u, _ = clusterapi.Desired(c, "v1.38.0")
	if v, _, _ := unstructured.NestedString(u.Object, "spec", "topology", "version"); v != "v1.38.0" {
		t.Errorf("version %q: a leading v is not doubled", v)
	}
	if r, _, _ := unstructured.NestedInt64(u.Object, "spec", "topology", "controlPlane", "replicas"); r != 1 {
		t.Errorf("control plane replicas %d, want the default 1", r)
	}
}

// What Cluster API reports comes back as status.capi and one line of its
// Available condition.
func TestObserve(t *testing.T) {
	u := clusterapi.Object("Cluster")
	u.Object["spec"] = map[string]any{"topology": map[string]any{"version": "v1.37.2"}}
	u.Object["status"] = map[string]any{
		"phase":          "Provisioned",
		"initialization": map[string]any{"controlPlaneInitialized": true},
		"controlPlane":   map[string]any{"readyReplicas": int64(1), "desiredReplicas": int64(1)},
		"workers":        map[string]any{"readyReplicas": int64(1), "desiredReplicas": int64(3)},
		"conditions": []any{map[string]any{
			"type": "Available", "status": "False", "reason": "NotAvailable",
			"message": "* WorkersAvailable:\n  * MachineDeployment workers: 1 available replica, at least 3 required\n* RemoteConnectionProbe: True",
		}},
	}
	o := clusterapi.Observe(u)
	want := v1.CAPIStatus{Phase: "Provisioned", ControlPlane: v1.ReplicaCount{Ready: 1, Desired: 1}, Workers: v1.ReplicaCount{Ready: 1, Desired: 3}, Version: "v1.37.2"}
	if o.Status != want || !o.Initialized {
		t.Errorf("observed %+v initialized %v, want %+v", o.Status, o.Initialized, want)
	}
	if o.Available.Status != metav1.ConditionFalse || o.Available.Reason != "NotAvailable" ||
		o.Available.Message != "WorkersAvailable: MachineDeployment workers: 1 available replica, at least 3 required; RemoteConnectionProbe: True" {
		t.Errorf("available %+v", o.Available)
	}
	if got := clusterapi.Summary(&o.Status); got != "Provisioned: control plane 1/1, workers 1/3, v1.37.2" {
		t.Errorf("summary %q", got)
	}
	if o.Busy != "" {
		t.Errorf("busy %q with no upgrade or roll-out reported", o.Busy)
	}
	if o := clusterapi.Observe(clusterapi.Object("Cluster")); o.Available.Status != metav1.ConditionUnknown || o.Initialized {
		t.Errorf("a Cluster Cluster API has not reported on: %+v", o)
	}

	// An upgrade under way: Available stays True, the topology is not
	// reconciled yet and Machines roll out.
	u.Object["status"].(map[string]any)["conditions"] = []any{
		map[string]any{"type": "Available", "status": "True", "reason": "Available"},
		map[string]any{"type": "TopologyReconciled", "status": "False", "reason": "ClusterUpgrading", "message": "* MachineDeployment workers upgrading"},
		map[string]any{"type": "RollingOut", "status": "True", "reason": "RollingOut"},
	}
	if o := clusterapi.Observe(u); o.Busy != "topology not reconciled (ClusterUpgrading): MachineDeployment workers upgrading; rolling out" {
		t.Errorf("busy %q during an upgrade", o.Busy)
	}
}
