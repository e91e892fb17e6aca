// Package v1alpha1 holds Strata's API types (group strata.dev): cluster
// profiles, the clusters that follow them and the registries packs come from. Types only: no logic, no I/O.
//
// +kubebuilder:object:generate=true
// +groupName=strata.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of these types.
var GroupVersion = schema.GroupVersion{Group: "strata.dev", Version: "v1alpha1"}

// AddToScheme registers the types of this group-version with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&ClusterProfile{}, &ClusterProfileList{},
		&Cluster{}, &ClusterList{},
		&PackRegistry{}, &PackRegistryList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
