package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIEndpoint is where a Kubernetes API server answers.
type APIEndpoint struct {
	// +optional
	Host string `json:"host,omitempty"`
	// +optional
	Port int32 `json:"port,omitempty"`
}

// ObjectMeta is the metadata a template gives the objects made from it.
type ObjectMeta struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// LocalCluster is the infrastructure of a cluster whose control plane and
// nodes run on this machine: there is nothing to make, so it is provisioned
// at once. The control plane provider (LocalControlPlane) gives the endpoint.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
// +kubebuilder:printcolumn:name="Provisioned",type=boolean,JSONPath=`.status.initialization.provisioned`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LocalCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LocalClusterSpec   `json:"spec,omitempty"`
	Status LocalClusterStatus `json:"status,omitempty"`
}

// LocalClusterSpec is empty by design: where a local cluster's API server
// listens is the control plane's to say.
type LocalClusterSpec struct {
	// ControlPlaneEndpoint, when set by a user, is kept as it is.
	// +optional
	ControlPlaneEndpoint APIEndpoint `json:"controlPlaneEndpoint,omitempty,omitzero"`
}

// ClusterInitialization is the InfraCluster contract's initialization.
type ClusterInitialization struct {
	// Provisioned is true once the infrastructure is ready.
	// +optional
	Provisioned *bool `json:"provisioned,omitempty"`
}

// LocalClusterStatus is what the provider observed.
type LocalClusterStatus struct {
	// +optional
	Initialization ClusterInitialization `json:"initialization,omitempty,omitzero"`
	// Conditions: Ready.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// LocalClusterList lists LocalClusters.
//
// +kubebuilder:object:root=true
type LocalClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalCluster `json:"items"`
}

// LocalClusterTemplate is what a ClusterClass makes LocalClusters from.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
type LocalClusterTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LocalClusterTemplateSpec `json:"spec"`
}

// LocalClusterTemplateSpec holds the template.
type LocalClusterTemplateSpec struct {
	Template LocalClusterTemplateResource `json:"template"`
}

// LocalClusterTemplateResource is a LocalCluster to be.
type LocalClusterTemplateResource struct {
	// +optional
	ObjectMeta ObjectMeta `json:"metadata,omitempty,omitzero"`
	// +optional
	Spec LocalClusterSpec `json:"spec,omitempty"`
}

// LocalClusterTemplateList lists LocalClusterTemplates.
//
// +kubebuilder:object:root=true
type LocalClusterTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalClusterTemplate `json:"items"`
}

// LocalMachine is one node of a local cluster: a kwok node in the workload
// cluster, named after the Machine, whose spec.providerID is the
// LocalMachine's, so that Cluster API links the Node to the Machine.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.nodeName`
// +kubebuilder:printcolumn:name="ProviderID",type=string,JSONPath=`.spec.providerID`
// +kubebuilder:printcolumn:name="Provisioned",type=boolean,JSONPath=`.status.initialization.provisioned`
type LocalMachine struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LocalMachineSpec   `json:"spec,omitempty"`
	Status LocalMachineStatus `json:"status,omitempty"`
}

// LocalMachineSpec is the node to simulate.
type LocalMachineSpec struct {
	// ProviderID is set by the provider: local://<namespace>/<cluster>/<machine>.
	// +optional
	ProviderID string `json:"providerID,omitempty"`
	// CPU of the node; 32 when unset.
	// +optional
	CPU string `json:"cpu,omitempty"`
	// Memory of the node; 256Gi when unset.
	// +optional
	Memory string `json:"memory,omitempty"`
	// Disk of the node; 100Gi when unset.
	// +optional
	Disk string `json:"disk,omitempty"`
}

// MachineInitialization is the InfraMachine contract's initialization.
type MachineInitialization struct {
	// Provisioned is true once the node exists in the workload cluster.
	// +optional
	Provisioned *bool `json:"provisioned,omitempty"`
}

// MachineAddress is an address of a machine.
type MachineAddress struct {
	// Type: Hostname, InternalIP, ...
	Type    string `json:"type"`
	Address string `json:"address"`
}

// LocalMachineStatus is what the provider observed.
type LocalMachineStatus struct {
	// +optional
	Initialization MachineInitialization `json:"initialization,omitempty,omitzero"`
	// NodeName of the kwok node in the workload cluster.
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// +optional
	Addresses []MachineAddress `json:"addresses,omitempty"`
	// Conditions: Ready.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// LocalMachineList lists LocalMachines.
//
// +kubebuilder:object:root=true
type LocalMachineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalMachine `json:"items"`
}

// LocalMachineTemplate is what MachineDeployments make LocalMachines from.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
type LocalMachineTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LocalMachineTemplateSpec `json:"spec"`
}

// LocalMachineTemplateSpec holds the template.
type LocalMachineTemplateSpec struct {
	Template LocalMachineTemplateResource `json:"template"`
}

// LocalMachineTemplateResource is a LocalMachine to be.
type LocalMachineTemplateResource struct {
	// +optional
	ObjectMeta ObjectMeta `json:"metadata,omitempty,omitzero"`
	// +optional
	Spec LocalMachineSpec `json:"spec,omitempty"`
}

// LocalMachineTemplateList lists LocalMachineTemplates.
//
// +kubebuilder:object:root=true
type LocalMachineTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalMachineTemplate `json:"items"`
}
