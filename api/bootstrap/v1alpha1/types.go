package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	infrav1 "strata.dev/strata/api/infrastructure/v1alpha1"
)

// LocalConfig is the bootstrap configuration of one Machine of a local
// cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.dataSecretName`
type LocalConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LocalConfigSpec   `json:"spec,omitempty"`
	Status LocalConfigStatus `json:"status,omitempty"`
}

// LocalConfigSpec is empty: a simulated node is configured by its
// LocalMachine.
type LocalConfigSpec struct{}

// ConfigInitialization is the BootstrapConfig contract's initialization.
type ConfigInitialization struct {
	// DataSecretCreated is true once the data Secret exists.
	// +optional
	DataSecretCreated *bool `json:"dataSecretCreated,omitempty"`
}

// LocalConfigStatus is what the provider made.
type LocalConfigStatus struct {
	// +optional
	Initialization ConfigInitialization `json:"initialization,omitempty,omitzero"`
	// DataSecretName is the Secret holding the bootstrap data (key value).
	// +optional
	DataSecretName string `json:"dataSecretName,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// LocalConfigList lists LocalConfigs.
//
// +kubebuilder:object:root=true
type LocalConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalConfig `json:"items"`
}

// LocalConfigTemplate is what MachineDeployments make LocalConfigs from.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=cluster-api
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
type LocalConfigTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LocalConfigTemplateSpec `json:"spec"`
}

// LocalConfigTemplateSpec holds the template.
type LocalConfigTemplateSpec struct {
	Template LocalConfigTemplateResource `json:"template"`
}

// LocalConfigTemplateResource is a LocalConfig to be.
type LocalConfigTemplateResource struct {
	// +optional
	ObjectMeta infrav1.ObjectMeta `json:"metadata,omitempty,omitzero"`
	// +optional
	Spec LocalConfigSpec `json:"spec,omitempty"`
}

// LocalConfigTemplateList lists LocalConfigTemplates.
//
// +kubebuilder:object:root=true
type LocalConfigTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalConfigTemplate `json:"items"`
}
