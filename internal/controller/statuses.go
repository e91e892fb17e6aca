package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	v1 "strata.dev/strata/api/v1alpha1"
)

// writtenStatuses remembers the status last written for each cluster. A
// reconcile that follows a status write at once — queued while the last one
// ran — may read a Cluster from the cache that does not have it yet; it
// starts from the remembered one instead. The controller is the status's
// only writer (one worker per cluster, one active manager), so what it
// wrote last is what is stored.
type writtenStatuses struct {
	mu        sync.Mutex
	byCluster map[types.UID]*v1.ClusterStatus
}

func (w *writtenStatuses) last(uid types.UID) *v1.ClusterStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.byCluster[uid]; s != nil {
		return s.DeepCopy()
	}
	return nil
}

func (w *writtenStatuses) remember(uid types.UID, s *v1.ClusterStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byCluster[uid] = s.DeepCopy()
}

func (w *writtenStatuses) forget(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byCluster, uid)
}
