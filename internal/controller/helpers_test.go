package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/testenv"
)

// managementPlane starts a management plane with Strata's CRDs and a
// manager on it, and creates the given namespaces.
func managementPlane(t *testing.T, resync time.Duration, namespaces ...string) (*rest.Config, client.Client) {
	t.Helper()
	// The logger is process-wide while tests run in parallel: status and
	// events are what these tests read.
	log.SetLogger(logr.Discard())
	mgmt := testenv.Management(t, "../../config/crd/bases")
	packs, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := controller.NewManager(mgmt, controller.ManagerOptions{Packs: packs, LayerTimeout: 2 * time.Minute, Resync: resync, SeveralPerProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	c, err := client.New(mgmt, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		must(t, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	return mgmt, c
}
