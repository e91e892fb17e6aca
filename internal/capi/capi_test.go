package capi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/capi"
	"strata.dev/strata/internal/testenv"
)

// Cluster API's manager is supervised: killed, it is started again, and
// its webhooks answer again (a ClusterClass write goes through them).
func TestTheManagerIsStartedAgainWhenItDies(t *testing.T) {
	if err := capi.FindBuild().Check(); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.Management(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := capi.Start(ctx, capi.Options{Config: cfg, Kubeconfig: testenv.Kubeconfig(t, cfg), Dir: filepath.Join(t.TempDir(), "capi")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	go m.Supervise(ctx, 200*time.Millisecond)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Cluster API's defaulting webhook labels a MachineDeployment with its
	// cluster: a label only the webhook sets (dry run, nothing stored).
	defaulted := func() (string, error) {
		md := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
			"metadata": map[string]any{"name": "md", "namespace": "default"},
			"spec": map[string]any{"clusterName": "c1", "template": map[string]any{"spec": map[string]any{
				"clusterName": "c1", "bootstrap": map[string]any{"dataSecretName": "x"},
				"infrastructureRef": map[string]any{"apiGroup": "infrastructure.strata.dev", "kind": "LocalMachine", "name": "m"},
			}}},
		}}
		if err := c.Create(ctx, md, client.DryRunAll); err != nil {
			return "", err
		}
		return md.GetLabels()["cluster.x-k8s.io/cluster-name"], nil
	}
	if got, err := defaulted(); err != nil || got != "c1" {
		t.Fatalf("defaulting webhook: label %q, %v", got, err)
	}
	before := m.PID()
	m.Kill()
	testenv.WaitUntil(t, "a new manager with its webhooks", 2*time.Minute, func() (bool, string) {
		if pid := m.PID(); pid == before || pid == 0 {
			return false, "not started again"
		}
		got, err := defaulted()
		if err != nil {
			return false, err.Error()
		}
		return got == "c1", "label " + got
	})
}
