// Package v1alpha1 holds the types of Strata's local control plane provider
// for Cluster API (group controlplane.strata.dev): a hosted control plane —
// etcd, kube-apiserver, controller-manager and scheduler as processes on
// this machine — following Cluster API's v1beta2 ControlPlane contract.
// Types only: no logic, no I/O.
//
// +kubebuilder:object:generate=true
// +groupName=controlplane.strata.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of these types.
var GroupVersion = schema.GroupVersion{Group: "controlplane.strata.dev", Version: "v1alpha1"}

// AddToScheme registers the types of this group-version with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&LocalControlPlane{}, &LocalControlPlaneList{},
		&LocalControlPlaneTemplate{}, &LocalControlPlaneTemplateList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
