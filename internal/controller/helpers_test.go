package controller_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/cli"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/testenv"
)

// managementPlane starts a management plane with Strata's CRDs and a
// manager on it, and creates the given namespaces.
func managementPlane(t testing.TB, resync time.Duration, namespaces ...string) (*rest.Config, client.Client) {
	t.Helper()
	mgmt, c := emptyManagementPlane(t, namespaces...)
	startManager(t, mgmt, resync)
	return mgmt, c
}

// emptyManagementPlane starts a management plane with no manager yet.
func emptyManagementPlane(t testing.TB, namespaces ...string) (*rest.Config, client.Client) {
	t.Helper()
	// The logger is process-wide while tests run in parallel: status and
	// events are what these tests read.
	log.SetLogger(logr.Discard())
	mgmt := testenv.Management(t, "../../config/crd/bases")
	c, err := client.New(mgmt, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		must(t, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	return mgmt, c
}

// startManager runs a manager until the returned stop is called or the
// test ends; stop waits until it has shut down.
func startManager(t testing.TB, mgmt *rest.Config, resync time.Duration) (stop func()) {
	t.Helper()
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	if err != nil {
		t.Fatal(err)
	}
	return startManagerWith(t, mgmt, controller.ManagerOptions{Packs: packs, LayerTimeout: 2 * time.Minute, Resync: resync})
}

// startManagerWith runs a manager with the given options.
func startManagerWith(t testing.TB, mgmt *rest.Config, opts controller.ManagerOptions) (stop func()) {
	t.Helper()
	opts.SeveralPerProcess = true
	mgr, err := controller.NewManager(mgmt, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// strataCLI runs the strata command against a management plane, in the
// given project, and returns its output.
func strataCLI(t *testing.T, kubeconfig, namespace string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(&out, &errOut)
	root.SetArgs(append(args, "--kubeconfig", kubeconfig, "-n", namespace))
	if err := root.Execute(); err != nil {
		t.Fatalf("strata %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// importCluster creates a kubeconfig Secret and an imported Cluster that
// attaches the given profiles.
func importCluster(t testing.TB, c client.Client, namespace, name string, kubeconfig []byte, policy v1.UpdatePolicy, profiles ...v1.ProfileAttachment) *v1.Cluster {
	t.Helper()
	ctx := context.Background()
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-kubeconfig", Namespace: namespace}, Data: map[string][]byte{"kubeconfig": kubeconfig}}))
	cluster := &v1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       v1.ClusterSpec{KubeconfigSecretRef: &v1.SecretKeyRef{Name: name + "-kubeconfig"}, UpdatePolicy: policy, Profiles: profiles},
	}
	must(t, c.Create(ctx, cluster))
	return cluster
}

// getCluster reads a cluster's current state.
func getCluster(t testing.TB, c client.Client, cluster *v1.Cluster) *v1.Cluster {
	t.Helper()
	got := &v1.Cluster{}
	must(t, c.Get(context.Background(), client.ObjectKeyFromObject(cluster), got))
	return got
}

// setHelloReplicas edits the shared hello-1.0.0 profile in place: its
// replicas variable defaults to n.
func setHelloReplicas(t testing.TB, c client.Client, n string) {
	t.Helper()
	ctx := context.Background()
	p := &v1.ClusterProfile{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: controller.SharedNamespace, Name: "hello-1.0.0"}, p))
	patch := client.MergeFrom(p.DeepCopy())
	p.Spec.Variables[0].Default = n
	must(t, c.Patch(ctx, p, patch))
}
