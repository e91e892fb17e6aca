package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	infrav1 "strata.dev/strata/api/infrastructure/v1alpha1"
)

// LocalControlPlane is a workload cluster's control plane run as processes
// on this machine, on the Kubernetes build of its version; a new version
// restarts it on that build with its etcd data kept. It writes the
// kubeconfig Secret Cluster API reads (<cluster>-kubeconfig, key value).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Initialized",type=boolean,JSONPath=`.status.initialization.controlPlaneInitialized`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.controlPlaneEndpoint.port`
type LocalControlPlane struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LocalControlPlaneSpec   `json:"spec,omitempty"`
	Status LocalControlPlaneStatus `json:"status,omitempty"`
}

// LocalControlPlaneSpec is the control plane wanted.
type LocalControlPlaneSpec struct {
	// Version of Kubernetes, e.g. v1.37.2; its binaries must be built here
	// (`make kube`).
	// +kubebuilder:validation:Pattern=`^v?\d+\.\d+\.\d+([-+].*)?$`
	Version string `json:"version"`
	// Replicas of the control plane. A local control plane runs one
	// instance of each component, so 1 is the only value it takes.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// ControlPlaneEndpoint is set by the provider once the API server runs;
	// the API server keeps this port across restarts.
	// +optional
	ControlPlaneEndpoint infrav1.APIEndpoint `json:"controlPlaneEndpoint,omitempty,omitzero"`
}

// ControlPlaneInitialization is the ControlPlane contract's initialization.
type ControlPlaneInitialization struct {
	// ControlPlaneInitialized is true once the API server answers.
	// +optional
	ControlPlaneInitialized *bool `json:"controlPlaneInitialized,omitempty"`
}

// LocalControlPlaneStatus is what the provider observed.
type LocalControlPlaneStatus struct {
	// +optional
	Initialization ControlPlaneInitialization `json:"initialization,omitempty,omitzero"`
	// Selector for the scale subresource; a hosted control plane has no
	// Machines, so it selects none.
	// +optional
	Selector string `json:"selector,omitempty"`
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// +optional
	ReadyReplicas *int32 `json:"readyReplicas,omitempty"`
	// +optional
	AvailableReplicas *int32 `json:"availableReplicas,omitempty"`
	// +optional
	UpToDateReplicas *int32 `json:"upToDateReplicas,omitempty"`
	// Version the API server runs.
	// +optional
	Version string `json:"version,omitempty"`
	// Conditions: Available (mirrored by Cluster API as the Cluster's
	// ControlPlaneAvailable), RollingOut.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// LocalControlPlaneList lists LocalControlPlanes.
//
// +kubebuilder:object:root=true
type LocalControlPlaneList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalControlPlane `json:"items"`
}

// LocalControlPlaneTemplate is what a ClusterClass makes LocalControlPlanes
// from; the topology sets version and replicas.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
type LocalControlPlaneTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LocalControlPlaneTemplateSpec `json:"spec"`
}

// LocalControlPlaneTemplateSpec holds the template.
type LocalControlPlaneTemplateSpec struct {
	Template LocalControlPlaneTemplateResource `json:"template"`
}

// LocalControlPlaneTemplateResource is a LocalControlPlane to be. Its spec
// has no required field: the topology gives the version.
type LocalControlPlaneTemplateResource struct {
	// +optional
	ObjectMeta infrav1.ObjectMeta `json:"metadata,omitempty,omitzero"`
	// +optional
	Spec LocalControlPlaneTemplateResourceSpec `json:"spec,omitempty"`
}

// LocalControlPlaneTemplateResourceSpec is the part of a control plane's
// spec a class may fix.
type LocalControlPlaneTemplateResourceSpec struct{}

// LocalControlPlaneTemplateList lists LocalControlPlaneTemplates.
//
// +kubebuilder:object:root=true
type LocalControlPlaneTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalControlPlaneTemplate `json:"items"`
}
