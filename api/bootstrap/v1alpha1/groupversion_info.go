// Package v1alpha1 holds the types of Strata's local bootstrap provider for
// Cluster API (group bootstrap.strata.dev). Machines need bootstrap data
// before their infrastructure is made; a kwok node needs none, so a
// LocalConfig only writes the data Secret the v1beta2 BootstrapConfig
// contract asks for. Types only: no logic, no I/O.
//
// +kubebuilder:object:generate=true
// +groupName=bootstrap.strata.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of these types.
var GroupVersion = schema.GroupVersion{Group: "bootstrap.strata.dev", Version: "v1alpha1"}

// AddToScheme registers the types of this group-version with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&LocalConfig{}, &LocalConfigList{},
		&LocalConfigTemplate{}, &LocalConfigTemplateList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
