package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/testenv"
)

// A draft version moves no cluster: one following 1.x stays where it is
// and is not told of an update, one naming the draft is Stalled saying it
// is a draft, the draft's roll-out does not start. Published with the CLI,
// it flows through its roll-out to both.
func TestADraftMovesNoClusterUntilPublished(t *testing.T) {
	t.Parallel()
	mgmt, c := managementPlane(t, 0, controller.SharedNamespace, "edge")
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	ctx := context.Background()
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	follower := importCluster(t, c, "edge", "follower", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.x"})
	waitFor(t, "the follower Ready on 1.0.0", func() (bool, string) {
		v, ready := runsVersion(t, c, follower)
		return v == "1.0.0" && ready, v
	})

	draft := helloProfile("1.1.0", "2")
	draft.Spec.Draft = true
	draft.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "all"}}}
	must(t, c.Create(ctx, draft))
	pinned := importCluster(t, c, "edge", "pinned", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.1.0"})
	waitFor(t, "the cluster naming the draft Stalled", func() (bool, string) {
		cond := apimeta.FindStatusCondition(getCluster(t, c, pinned).Status.Conditions, v1.ConditionStalled)
		return cond != nil && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, "version 1.1.0 of hello is a draft"), fmt.Sprintf("%+v", cond)
	})
	got := getCluster(t, c, follower)
	if v, ready := runsVersion(t, c, follower); v != "1.0.0" || !ready || got.Status.Profiles[0].Latest != "1.0.0" {
		t.Errorf("the follower moved or was told of the draft: %s ready %v, latest %q", v, ready, got.Status.Profiles[0].Latest)
	}
	stored := &v1.ClusterProfile{}
	must(t, c.Get(ctx, client.ObjectKeyFromObject(draft), stored))
	if stored.Status.Rollout != nil {
		t.Errorf("the draft's roll-out started: %+v", stored.Status.Rollout)
	}

	strataCLI(t, testenv.Kubeconfig(t, mgmt), controller.SharedNamespace, "profile", "publish", "hello", "1.1.0")
	for _, cl := range []*v1.Cluster{follower, pinned} {
		waitFor(t, cl.Name+" Ready on the published 1.1.0", func() (bool, string) {
			v, ready := runsVersion(t, c, cl)
			return v == "1.1.0" && ready, v
		})
	}
	waitFor(t, "the roll-out of 1.1.0 completed", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(draft), stored))
		st := stored.Status.Rollout
		return st != nil && st.Phase == v1.RolloutCompleted, fmt.Sprintf("%+v", st)
	})
}
