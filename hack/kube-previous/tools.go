//go:build tools

// Package kubeprevious pins the Kubernetes commands of the version before
// Strata's default, so that go mod tidy keeps their dependencies. Only the
// Cluster API upgrade test needs them (make kube-previous).
package kubeprevious

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
