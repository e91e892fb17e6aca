package loadtest

import (
	"sync"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
)

// tally holds how each of the load test's clusters stands, as the watch of
// them shows each change. Counting them from a list of ten thousand Clusters
// every second would take, from the plane it measures, the CPU of the
// machine they share.
type tally struct {
	profile string

	mu     sync.Mutex
	stands map[client.ObjectKey]standing
}

// standing is what the counts need of a cluster's status.
type standing struct {
	registered, ready bool
	// runs is the version of the load test's profile the cluster runs.
	runs string
}

func newTally(profile string) *tally {
	return &tally{profile: profile, stands: map[client.ObjectKey]standing{}}
}

// handler keeps the tally as the informer of the load test's Clusters
// sees them come, change and go.
func (t *tally) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    t.set,
		UpdateFunc: func(_, o any) { t.set(o) },
		DeleteFunc: func(o any) {
			if gone, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = gone.Obj
			}
			if c, ok := o.(*v1.Cluster); ok {
				t.mu.Lock()
				delete(t.stands, client.ObjectKeyFromObject(c))
				t.mu.Unlock()
			}
		},
	}
}

func (t *tally) set(o any) {
	c, ok := o.(*v1.Cluster)
	if !ok {
		return
	}
	s := standing{registered: c.Status.Agent != nil, ready: c.Status.Phase == v1.ClusterReady}
	for _, p := range c.Status.Profiles {
		if p.Name == t.profile {
			s.runs = p.Version
		}
	}
	t.mu.Lock()
	t.stands[client.ObjectKeyFromObject(c)] = s
	t.mu.Unlock()
}

// counts are the clusters registered, Ready, and Ready on version of the
// load test's profile ("" counts none).
func (t *tally) counts(version string) (registered, ready, readyOn int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.stands {
		if s.registered {
			registered++
		}
		if s.ready {
			ready++
			if version != "" && s.runs == version {
				readyOn++
			}
		}
	}
	return registered, ready, readyOn
}
