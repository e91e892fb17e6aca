package engine

import (
	"context"
	"errors"
	"maps"
	"testing"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/release/common"
	rspb "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"strata.dev/strata/internal/testenv"
)

// Strata's release records are Helm's, to the byte: the helm CLI and
// Helm's own driver read and find them, and what Helm's driver would have
// written for the same release is what Strata writes.
func TestReleaseRecordsAreHelms(t *testing.T) {
	t.Parallel()
	cs := kubernetes.NewForConfigOrDie(testenv.Management(t))
	ctx := context.Background()
	for _, ns := range []string{"strata", "helm"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ours := newReleaseSecrets(cs.CoreV1().Secrets("strata"))
	helms := driver.NewSecrets(cs.CoreV1().Secrets("helm"))
	rel := &rspb.Release{
		Name: "monitoring", Namespace: "monitoring", Version: 3,
		Info:     &rspb.Info{Status: common.StatusPendingUpgrade, Description: "Preparing upgrade"},
		Chart:    &chartv2.Chart{Metadata: &chartv2.Metadata{Name: "kube-prometheus-stack", Version: "69.2.0", APIVersion: "v2"}},
		Config:   map[string]any{"grafana": map[string]any{"enabled": false}},
		Manifest: "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
		Labels:   map[string]string{"strata.dev/layer": "monitoring"},
	}
	const key = "sh.helm.release.v1.monitoring.v3"
	if err := ours.Create(key, rel); err != nil {
		t.Fatal(err)
	}
	if err := helms.Create(key, rel); err != nil {
		t.Fatal(err)
	}
	if err := ours.Create(key, rel); !errors.Is(err, driver.ErrReleaseExists) {
		t.Errorf("a second create: %v, want %v", err, driver.ErrReleaseExists)
	}
	same := func(stamp string) {
		t.Helper()
		mine, err := cs.CoreV1().Secrets("strata").Get(ctx, key, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := cs.CoreV1().Secrets("helm").Get(ctx, key, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if mine.Labels[stamp] == "" {
			t.Errorf("no %s label: %v", stamp, mine.Labels)
		}
		// Written in the same second or not, the stamps are Helm's.
		stampless := func(l map[string]string) map[string]string {
			l = maps.Clone(l)
			delete(l, stamp)
			return l
		}
		if mine.Type != theirs.Type || !maps.Equal(stampless(mine.Labels), stampless(theirs.Labels)) {
			t.Errorf("Strata's record is %s %v, Helm's %s %v", mine.Type, mine.Labels, theirs.Type, theirs.Labels)
		}
		if string(mine.Data["release"]) != string(theirs.Data["release"]) || len(mine.Data) != 1 {
			t.Errorf("Strata's record holds %d bytes, Helm's %d, not the same", len(mine.Data["release"]), len(theirs.Data["release"]))
		}
	}
	same("createdAt")

	// Helm reads what Strata wrote, and finds it by its labels.
	reader := driver.NewSecrets(cs.CoreV1().Secrets("strata"))
	got, err := reader.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if r := got.(*rspb.Release); r.Name != rel.Name || r.Version != 3 || r.Manifest != rel.Manifest || r.Chart.Metadata.Version != "69.2.0" || r.Labels["strata.dev/layer"] != "monitoring" {
		t.Errorf("Helm read back %+v", r)
	}

	rel.Info.Status = common.StatusDeployed
	if err := ours.Update(key, rel); err != nil {
		t.Fatal(err)
	}
	if err := helms.Update(key, rel); err != nil {
		t.Fatal(err)
	}
	same("modifiedAt")
	found, err := reader.Query(map[string]string{"name": "monitoring", "owner": "helm", "status": "deployed"})
	if err != nil || len(found) != 1 {
		t.Errorf("Helm's query for the deployed release found %d: %v", len(found), err)
	}
}
