// Package v1alpha1 holds the types of Strata's local infrastructure
// provider for Cluster API (group infrastructure.strata.dev): the cluster
// and machines of the `local` ClusterClass, whose nodes are kwok nodes in a
// control plane this machine runs. They follow Cluster API's v1beta2
// InfraCluster and InfraMachine contracts. Types only: no logic, no I/O.
//
// +kubebuilder:object:generate=true
// +groupName=infrastructure.strata.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of these types.
var GroupVersion = schema.GroupVersion{Group: "infrastructure.strata.dev", Version: "v1alpha1"}

// AddToScheme registers the types of this group-version with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&LocalCluster{}, &LocalClusterList{},
		&LocalClusterTemplate{}, &LocalClusterTemplateList{},
		&LocalMachine{}, &LocalMachineList{},
		&LocalMachineTemplate{}, &LocalMachineTemplateList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
