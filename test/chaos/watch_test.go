package chaos_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
)

// fleetWatch sees every status the clusters show while the test runs, as
// a user's `kubectl get -w` would, and notes what must never be seen: a
// cluster Ready while one of its layers is not, or with the layers of
// another version; a cluster of a wave moving before the wave ahead was
// Ready and soaked.
type fleetWatch struct {
	waveOf map[string]string

	mu      sync.Mutex
	latest  map[string]*v1.Cluster
	version string
	soak    time.Duration
	moved   map[string]time.Time // first seen applying version
	ready   map[string]time.Time // first seen Ready on version
	bad     []string
}

func watchFleet(t *testing.T, mgmt *rest.Config, fleet []*member) *fleetWatch {
	t.Helper()
	w := &fleetWatch{waveOf: map[string]string{}, latest: map[string]*v1.Cluster{}}
	for _, m := range fleet {
		w.waveOf[m.name] = m.wave
	}
	c, err := client.NewWithWatch(mgmt, client.Options{Scheme: controller.Scheme()})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		rv := ""
		for ctx.Err() == nil {
			wi, err := c.Watch(ctx, &v1.ClusterList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				time.Sleep(200 * time.Millisecond) // the management plane never goes away; a retry is enough
				continue
			}
			for ev := range wi.ResultChan() {
				if ev.Type == watch.Error {
					rv = "" // expired: start again from a fresh list
					break
				}
				cl, ok := ev.Object.(*v1.Cluster)
				if !ok {
					continue
				}
				rv = cl.ResourceVersion
				if ev.Type != watch.Bookmark {
					w.see(cl, time.Now())
				}
			}
			wi.Stop()
		}
	}()
	return w
}

// expect starts the record of a roll-out to version.
func (w *fleetWatch) expect(version string, soak time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.version, w.soak = version, soak
	w.moved, w.ready = map[string]time.Time{}, map[string]time.Time{}
}

func (w *fleetWatch) see(cl *v1.Cluster, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.latest[cl.Name] = cl
	st := cl.Status
	version := ""
	if len(st.Profiles) == 1 {
		version = st.Profiles[0].Version
	}
	readyCond := apimeta.IsStatusConditionTrue(st.Conditions, v1.ConditionReady)
	if st.Phase == v1.ClusterReady || readyCond {
		var names, notReady []string
		for _, l := range st.Layers {
			names = append(names, l.Name)
			if l.Phase != "Ready" {
				notReady = append(notReady, l.Name+" "+l.Phase)
			}
		}
		slices.Sort(names)
		if len(notReady) > 0 || version == "" || !slices.Equal(names, layerNames(version)) {
			w.bad = append(w.bad, fmt.Sprintf("cluster %s shown Ready (phase %s, condition %v) on %q with layers %v, not Ready: %v",
				cl.Name, st.Phase, readyCond, version, names, notReady))
		}
	}
	if w.version == "" || version != w.version {
		return
	}
	if _, ok := w.moved[cl.Name]; !ok {
		w.moved[cl.Name] = now
	}
	if _, ok := w.ready[cl.Name]; !ok && st.Phase == v1.ClusterReady {
		w.ready[cl.Name] = now
	}
}

// waitConverged waits until the watch has seen every cluster run version
// with all its layers Ready.
func (w *fleetWatch) waitConverged(t *testing.T, version string, timeout time.Duration) {
	t.Helper()
	want := layerNames(version)
	waitUntil(t, fmt.Sprintf("every cluster Ready on %s", version), timeout, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var behind []string
		for name := range w.waveOf {
			cl := w.latest[name]
			if cl == nil {
				behind = append(behind, name+": not seen")
				continue
			}
			st := cl.Status
			var ready []string
			for _, l := range st.Layers {
				if l.Phase == "Ready" {
					ready = append(ready, l.Name)
				}
			}
			slices.Sort(ready)
			on := len(st.Profiles) == 1 && st.Profiles[0].Version == version
			if st.Phase != v1.ClusterReady || !on || !slices.Equal(ready, want) || st.ObservedGeneration != cl.Generation {
				behind = append(behind, fmt.Sprintf("%s: %s %+v Ready layers %v", name, st.Phase, st.Profiles, ready))
			}
		}
		slices.Sort(behind)
		return len(behind) == 0, strings.Join(behind, "; ")
	})
}

// violations lists what was seen that must not be, the waves' order
// included: no cluster of a wave moved before every cluster of the wave
// ahead was Ready and its soak over. The roll-out's own clock counts the
// soak from its record, kept to the second: a second of slack.
func (w *fleetWatch) violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.bad)
	order := []string{"canary", "early", v1.RestWave}
	for i := 1; i < len(order); i++ {
		var aheadReady time.Time
		for name, wave := range w.waveOf {
			if wave == order[i-1] {
				if r := w.ready[name]; r.After(aheadReady) {
					aheadReady = r
				}
			}
		}
		for name, wave := range w.waveOf {
			moved, ok := w.moved[name]
			if wave != order[i] || !ok {
				continue
			}
			if earliest := aheadReady.Add(w.soak - 1500*time.Millisecond); moved.Before(earliest) {
				out = append(out, fmt.Sprintf("cluster %s of wave %s moved to %s %.1f s before wave %s was Ready and soaked",
					name, wave, w.version, earliest.Sub(moved).Seconds(), order[i-1]))
			}
		}
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("… and %d more", len(out)-20))
	}
	return out
}
