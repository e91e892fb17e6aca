package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Cluster is a target that follows one infra or full profile plus any number
// of add-on profiles, each pinned to a version, with its own variable values
// and layer overrides.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterSpec   `json:"spec"`
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterSpec says which profiles a cluster follows and how it differs.
type ClusterSpec struct {
	// Profiles attached to the cluster: exactly one infra or full profile
	// and any number of add-on profiles. Their layers install in this order.
	// +kubebuilder:validation:MinItems=1
	// +listType=map
	// +listMapKey=name
	Profiles []ProfileAttachment `json:"profiles"`
	// Overrides of layer values for this cluster only.
	// +optional
	// +listType=map
	// +listMapKey=layer
	Overrides []LayerOverride `json:"overrides,omitempty"`
}

// ProfileAttachment pins a profile version and sets its variables.
type ProfileAttachment struct {
	// Name of the profile (spec.name of its ClusterProfile objects).
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Version of the profile to follow.
	// +kubebuilder:validation:MinLength=1
	Version string `json:"version"`
	// Variables of that profile, by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	Variables []VariableValue `json:"variables,omitempty"`
}

// VariableValue sets one profile variable.
type VariableValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LayerOverride changes the values of one layer for this cluster.
type LayerOverride struct {
	// Layer name, unique across the cluster's profiles.
	Layer string `json:"layer"`
	// Values (YAML) merged over the profile's layer values.
	Values string `json:"values"`
}

// ClusterStatus is observed state of a cluster.
type ClusterStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, UpdatesAvailable, Drifted, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterList is a list of Cluster.
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}
