package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/rollout"
)

// A profile version wakes the manager for the clusters that attach the
// profile, but not for the agent-mode ones unless it names Secrets their
// agents must be let read: those agents resolve the version themselves.
// An agent is woken for its own cluster whatever the version names.
func TestAProfileVersionWakesTheClustersItConcerns(t *testing.T) {
	attaching := func(name string, mode v1.ClusterMode) *v1.Cluster {
		return &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "edge"},
			Spec: v1.ClusterSpec{Mode: mode, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}}}}
	}
	c := fake.NewClientBuilder().WithScheme(Scheme()).
		WithObjects(attaching("pushed", v1.ModePush), attaching("store", v1.ModeAgent)).
		WithIndex(&v1.Cluster{}, profileNameIndex, indexProfileNames).Build()
	plain := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "hello-1.1.0", Namespace: "edge"},
		Spec: v1.ClusterProfileSpec{Name: "hello", Version: "1.1.0"}}
	signed := plain.DeepCopy()
	signed.Spec.Layers = []v1.Layer{{Name: "signed", Chart: &v1.ChartSource{Repository: "oci://127.0.0.1:5000/charts/signed", Version: "1.0.0",
		Verify: &v1.SignatureVerification{Provider: v1.SignatureCosign, PublicKeySecretRef: &v1.SecretKeyRef{Name: "chart-key"}}}}}

	woken := func(r *ClusterReconciler, p *v1.ClusterProfile) []string {
		var names []string
		for _, req := range r.clustersUsingProfile(context.Background(), p) {
			names = append(names, req.Name)
		}
		slices.Sort(names)
		return names
	}
	manager := &ClusterReconciler{Client: c}
	if got := woken(manager, plain); !slices.Equal(got, []string{"pushed"}) {
		t.Errorf("a version naming no Secret woke the manager for %v, want [pushed]", got)
	}
	if got := woken(manager, signed); !slices.Equal(got, []string{"pushed", "store"}) {
		t.Errorf("a version naming a Secret woke the manager for %v, want [pushed store]", got)
	}
	agent := &ClusterReconciler{Client: c, Agent: &AgentRole{Cluster: types.NamespacedName{Namespace: "edge", Name: "store"}}}
	if got := woken(agent, plain); !slices.Contains(got, "store") {
		t.Errorf("a version woke the agent for %v, want its own cluster among them", got)
	}
}

// A profile version's bookkeeping — the label and finalizer the manager
// adds as it is published, its Valid condition, a draft's impact — wakes
// no cluster: every agent of the fleet would resolve the version again.
// What a cluster runs or shows may change with its spec, its annotations
// (which steer its roll-out), its roll-out's status and its deletion.
func TestOnlyWhatClustersRunWakesThem(t *testing.T) {
	published := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "hello-1.1.0", Namespace: "edge", Generation: 1},
		Spec: v1.ClusterProfileSpec{Name: "hello", Version: "1.1.0", Layers: []v1.Layer{{Name: "hello"}}}}
	for _, tc := range []struct {
		change string
		edit   func(*v1.ClusterProfile)
		wakes  bool
	}{
		{"its label and finalizer", func(p *v1.ClusterProfile) {
			p.Labels, p.Finalizers = map[string]string{ProfileLabel: "hello"}, []string{InUseFinalizer}
		}, false},
		{"its Valid condition", func(p *v1.ClusterProfile) {
			p.Status.ObservedGeneration = 1
			p.Status.Conditions = []metav1.Condition{{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: "Resolved"}}
		}, false},
		{"a draft's impact", func(p *v1.ClusterProfile) { p.Status.Impact = &v1.ImpactStatus{ObservedGeneration: 1} }, false},
		{"its spec", func(p *v1.ClusterProfile) { p.Spec.Layers[0].Name = "hi"; p.Generation = 2 }, true},
		{"its spec, on a client that counts no generation", func(p *v1.ClusterProfile) { p.Spec.UpdatePolicy = v1.UpdateManual }, true},
		{"an annotation that steers its roll-out", func(p *v1.ClusterProfile) { p.Annotations = map[string]string{rollout.PausedAnnotation: "true"} }, true},
		{"its roll-out", func(p *v1.ClusterProfile) { p.Status.Rollout = &v1.RolloutStatus{Phase: v1.RolloutProgressing} }, true},
		{"its deletion", func(p *v1.ClusterProfile) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }, true},
	} {
		edited := published.DeepCopy()
		tc.edit(edited)
		if got := profileChangesWhatClustersRun.Update(event.UpdateEvent{ObjectOld: published, ObjectNew: edited}); got != tc.wakes {
			t.Errorf("a change of %s wakes the clusters: %v, want %v", tc.change, got, tc.wakes)
		}
	}
}
