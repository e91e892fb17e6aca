//go:build tools

// Package tools pins Cluster API, whose core manager hack/capi/build.sh
// builds (its package main is the module root).
package tools

import _ "sigs.k8s.io/cluster-api"
