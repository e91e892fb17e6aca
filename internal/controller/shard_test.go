package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/testenv"
)

// Clusters labelled with a shard are reconciled by that shard's manager
// alone, under its own Lease; when the shard's leader dies, a standby
// replica takes the shard over.
func TestShardsSplitTheFleet(t *testing.T) {
	t.Parallel()
	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "fleet")
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	must(t, err)
	manager := func(shard string) func() {
		return startManagerWith(t, mgmt, controller.ManagerOptions{
			Packs: packs, LayerTimeout: 2 * time.Minute, Shard: shard,
			LeaderElection: true, LeaderElectionNamespace: controller.SharedNamespace,
		})
	}
	ctx := context.Background()
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	cluster := func(name, shard string) *v1.Cluster {
		wc := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: name, Nodes: 1})
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}, Data: map[string][]byte{"kubeconfig": wc.Kubeconfig()}}))
		cl := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}, Spec: v1.ClusterSpec{
			KubeconfigSecretRef: &v1.SecretKeyRef{Name: name}, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.x"}},
		}}
		if shard != "" {
			cl.Labels = map[string]string{controller.ShardLabel: shard}
		}
		must(t, c.Create(ctx, cl))
		return cl
	}
	readyOn := func(cl *v1.Cluster, version string) func() (bool, string) {
		return func() (bool, string) {
			got := getCluster(t, c, cl)
			return got.Status.Phase == v1.ClusterReady && len(got.Status.Profiles) == 1 && got.Status.Profiles[0].Version == version, fmt.Sprintf("%s: %+v", cl.Name, got.Status)
		}
	}

	manager("")
	home, east := cluster("home", ""), cluster("east", "east")
	waitFor(t, "the unlabelled cluster Ready under the unsharded manager", readyOn(home, "1.0.0"))
	if got := getCluster(t, c, east); got.Status.Phase != "" || len(got.Finalizers) > 0 {
		t.Fatalf("the unsharded manager touched shard east's cluster: %+v", got.Status)
	}

	stopFirst := manager("east")
	waitFor(t, "shard east's cluster Ready under its manager", readyOn(east, "1.0.0"))
	manager("east") // a standby replica of the shard

	// The leader dies without handing over; the standby takes the shard
	// once the Lease runs out, and the next version reaches the cluster.
	stopFirst()
	must(t, c.Create(ctx, helloProfile("1.1.0", "2")))
	waitFor(t, "shard east's cluster on 1.1.0 under the standby", readyOn(east, "1.1.0"))
	waitFor(t, "the unlabelled cluster on 1.1.0", readyOn(home, "1.1.0"))
}
