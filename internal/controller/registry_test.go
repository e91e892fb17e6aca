package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/testenv"
)

// A manager with no pack folder at all uses the packs of a PackRegistry: a
// wrong password shows on the registry and on the clusters that need it,
// and once fixed the cluster converges on a real workload cluster.
func TestClustersUsePacksFromAPackRegistry(t *testing.T) {
	t.Parallel()
	const user, password = "platform", "registry-pw-9"
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Username: user, Password: password})
	ep, _ := registry.ParseEndpoint(srv.Endpoint("team"))
	pusher, err := registry.New(ep, registry.Options{Credentials: &registry.Credentials{Username: user, Password: password}, CAPEM: srv.CAPEM})
	must(t, err)
	hello, problems := pack.Load(filepath.Join("../../../shared/testdata/pack-central", "hello-universe-1.2.0"))
	must(t, problems.Err())
	first, err := pusher.Push(context.Background(), hello, false)
	must(t, err)

	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "team-r")
	noFolders, err := pack.LoadCatalog()
	must(t, err)
	startManagerWith(t, mgmt, controller.ManagerOptions{Packs: noFolders, PackCacheDir: t.TempDir(), LayerTimeout: 2 * time.Minute})
	ctx := context.Background()

	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry-creds", Namespace: "team-r"}, Data: map[string][]byte{"username": []byte(user), "password": []byte("not-the-password")}}))
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry-ca", Namespace: "team-r"}, Data: map[string][]byte{"ca.crt": srv.CAPEM}}))
	preg := &v1.PackRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "team-r"},
		Spec: v1.PackRegistrySpec{Endpoint: srv.Host, BaseContentPath: "team", CredentialsSecretRef: &v1.LocalObjectRef{Name: "registry-creds"},
			CASecretRef: &v1.LocalObjectRef{Name: "registry-ca"}, SyncInterval: &metav1.Duration{Duration: time.Hour}},
	}
	must(t, c.Create(ctx, preg))
	waitRegistry := func(status metav1.ConditionStatus, reason string) *v1.PackRegistry {
		got := &v1.PackRegistry{}
		waitFor(t, fmt.Sprintf("PackRegistry Ready=%s %s", status, reason), func() (bool, string) {
			must(t, c.Get(ctx, client.ObjectKeyFromObject(preg), got))
			cond := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady)
			return cond != nil && cond.Status == status && cond.Reason == reason && cond.ObservedGeneration == got.Generation, fmt.Sprintf("%+v", got.Status)
		})
		return got
	}
	got := waitRegistry(metav1.ConditionFalse, "AuthenticationFailed")
	if msg := apimeta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady).Message; strings.Contains(msg, "not-the-password") {
		t.Errorf("the condition shows the password: %s", msg)
	}

	p := helloProfile("1.0.0", "1")
	p.Namespace = "team-r"
	must(t, c.Create(ctx, p))
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	cluster := importCluster(t, c, "team-r", "shop", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.0.0"})
	waitFor(t, "cluster Stalled naming the registry and the refusal", func() (bool, string) {
		cond := apimeta.FindStatusCondition(getCluster(t, c, cluster).Status.Conditions, v1.ConditionStalled)
		return cond != nil && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, srv.Host) && strings.Contains(cond.Message, "authentication failed"), fmt.Sprintf("%+v", cond)
	})

	// Fix the password in the Secret alone (the sync interval is an hour):
	// the registry syncs at once, the cluster converges from it.
	creds := &corev1.Secret{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: "team-r", Name: "registry-creds"}, creds))
	creds.Data["password"] = []byte(password)
	must(t, c.Update(ctx, creds))
	got = waitRegistry(metav1.ConditionTrue, "Synced")
	must(t, c.Get(ctx, client.ObjectKeyFromObject(preg), preg))
	if got.Status.Packs != 1 || got.Status.Versions != 1 || got.Status.LastSyncTime == nil {
		t.Errorf("registry status %+v, want 1 pack, 1 version and a sync time", got.Status)
	}
	waitFor(t, "cluster Ready with the pack from the registry", func() (bool, string) {
		st := getCluster(t, c, cluster).Status
		return st.Phase == v1.ClusterReady, fmt.Sprintf("%s %+v", st.Phase, st.Conditions)
	})
	cs, err := workload.Clientset()
	must(t, err)
	if _, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("the pack's Deployment: %v", err)
	}
	if l := getCluster(t, c, cluster).Status.Layers; len(l) != 1 || l[0].Digest != first.Digest {
		t.Errorf("layer status %+v, want the pack's digest %s", l, first.Digest)
	}

	// A Manual cluster on the same pack, approved once.
	other := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	manual := importCluster(t, c, "team-r", "vault", other.Kubeconfig(), v1.UpdateManual, v1.ProfileAttachment{Name: "hello", Version: "1.0.0"})
	approve := func() {
		var digest string
		waitFor(t, "a pending plan on the Manual cluster", func() (bool, string) {
			got := getCluster(t, c, manual)
			if got.Status.PendingPlan != nil {
				digest = got.Status.PendingPlan.Digest
			}
			return digest != "", fmt.Sprintf("%+v", got.Status.Conditions)
		})
		got := getCluster(t, c, manual)
		patch := client.MergeFrom(got.DeepCopy())
		got.Spec.ApprovedPlan = digest
		must(t, c.Patch(ctx, got, patch))
	}
	approve()
	waitFor(t, "the Manual cluster Ready", func() (bool, string) {
		st := getCluster(t, c, manual).Status
		return st.Phase == v1.ClusterReady && st.PendingPlan == nil, string(st.Phase)
	})

	// The tag is pushed again with other content (only a file that renders
	// nothing changes): Automatic follows the new digest; Manual shows the
	// change from digest to digest and runs the old one until approved.
	changed := t.TempDir()
	must(t, os.CopyFS(changed, os.DirFS(hello.Path)))
	must(t, os.WriteFile(filepath.Join(changed, "NOTES.md"), []byte("rebuilt with a fix\n"), 0o644))
	rebuilt, problems := pack.Load(changed)
	must(t, problems.Err())
	second, err := pusher.Push(ctx, rebuilt, true)
	must(t, err)
	if second.Digest == first.Digest {
		t.Fatal("the rebuilt pack has the same digest")
	}
	must(t, c.Get(ctx, client.ObjectKeyFromObject(preg), preg))
	preg.Annotations = map[string]string{"strata.dev/sync": "again"}
	must(t, c.Update(ctx, preg))
	waitFor(t, "the Automatic cluster on the new digest", func() (bool, string) {
		st := getCluster(t, c, cluster).Status
		return st.Phase == v1.ClusterReady && len(st.Layers) == 1 && st.Layers[0].Digest == second.Digest, fmt.Sprintf("%s %+v", st.Phase, st.Layers)
	})
	waitFor(t, "the Manual cluster showing the digest change", func() (bool, string) {
		st := getCluster(t, c, manual).Status
		if st.PendingPlan == nil || len(st.PendingPlan.Layers) != 1 {
			return false, fmt.Sprintf("%+v", st.PendingPlan)
		}
		l := st.PendingPlan.Layers[0]
		return l.FromDigest == first.Digest && l.ToDigest == second.Digest && strings.Contains(l.Reason, "pushed again") && st.Layers[0].Digest == first.Digest, fmt.Sprintf("%+v %+v", l, st.Layers)
	})
	approve()
	waitFor(t, "the Manual cluster on the new digest once approved", func() (bool, string) {
		st := getCluster(t, c, manual).Status
		return st.Phase == v1.ClusterReady && st.PendingPlan == nil && st.Layers[0].Digest == second.Digest, fmt.Sprintf("%s %+v", st.Phase, st.Layers)
	})

	// strata get packs: the registry's packs, who uses them, what is newer.
	hello2 := filepath.Join(t.TempDir(), "hello-universe-1.1.1")
	must(t, os.CopyFS(hello2, os.DirFS(filepath.Join("../../../shared/testdata/pack-central", "hello-universe-1.1.1"))))
	older, problems := pack.Load(hello2)
	must(t, problems.Err())
	_, err = pusher.Push(ctx, older, false)
	must(t, err)
	must(t, c.Get(ctx, client.ObjectKeyFromObject(preg), preg))
	preg.Annotations["strata.dev/sync"] = "third"
	must(t, c.Update(ctx, preg))
	waitFor(t, "two versions in the registry's status", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(preg), preg))
		return len(preg.Status.Entries) == 2, fmt.Sprintf("%+v", preg.Status.Entries)
	})
	var uses []registry.PackUse
	must(t, json.Unmarshal([]byte(strataCLI(t, testenv.Kubeconfig(t, mgmt), "team-r", "get", "packs", "-o", "json")), &uses))
	if len(uses) != 2 || uses[0].Version != "1.1.1" || uses[0].Newest != "1.2.0" || len(uses[0].Clusters) != 0 ||
		uses[1].Version != "1.2.0" || uses[1].Digest != second.Digest || strings.Join(uses[1].Clusters, ",") != "team-r/shop,team-r/vault" ||
		strings.Join(uses[1].Profiles, ",") != "team-r/hello-1.0.0" || strings.Join(uses[1].Registries, ",") != "team-r/team" {
		t.Errorf("strata get packs: %+v", uses)
	}
}

// The registry stops in the middle of a fleet update: a cluster whose packs
// are cached converges; one that needs a pack (and a Zarf package) never
// pulled waits, says which registry and pack, and converges when the
// registry is back. A manager restarted with the registry still down pulls
// nothing again: it moves a cluster to a new version from its cache.
func TestRegistryStoppedDuringAFleetUpdate(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ep, _ := registry.ParseEndpoint(srv.Endpoint("fleet"))
	pusher, err := registry.New(ep, registry.Options{PlainHTTP: true})
	must(t, err)
	for _, dir := range []string{"hello-universe-1.2.0", "spegel-0.0.30"} {
		p, problems := pack.Load(filepath.Join("../../../shared/testdata/pack-central", dir))
		must(t, problems.Err())
		_, err := pusher.Push(context.Background(), p, false)
		must(t, err)
	}
	srv.PublishZarf(t, "fleet/zarf/test", "0.0.1", "amd64", "", "",
		testenv.ZarfArchiveFiles(t, "../../../shared/testdata/zarf/packages/compressed/zarf-package-test-amd64-0.0.1.tar.zst"))

	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "fleet")
	noFolders, err := pack.LoadCatalog()
	must(t, err)
	cacheDir := t.TempDir()
	opts := controller.ManagerOptions{Packs: noFolders, PackCacheDir: cacheDir, LayerTimeout: 2 * time.Minute, Resync: 20 * time.Second}
	stop := startManagerWith(t, mgmt, opts)
	ctx := context.Background()
	must(t, c.Create(ctx, &v1.PackRegistry{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet", Namespace: controller.SharedNamespace},
		Spec:       v1.PackRegistrySpec{Endpoint: srv.Host, BaseContentPath: "fleet", PlainHTTP: true, SyncInterval: &metav1.Duration{Duration: 2 * time.Second}},
	}))
	must(t, c.Create(ctx, helloProfile("1.0.0", "1")))
	wa := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	wb := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	a := importCluster(t, c, "fleet", "a", wa.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.x"})
	b := importCluster(t, c, "fleet", "b", wb.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.0.0"})
	readyOn := func(cluster *v1.Cluster, version string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("cluster %s Ready on hello %s", cluster.Name, version), func() (bool, string) {
			got := getCluster(t, c, cluster)
			st := got.Status
			on := len(st.Profiles) > 0 && st.Profiles[0].Version == version
			return st.Phase == v1.ClusterReady && on && st.ObservedGeneration == got.Generation, fmt.Sprintf("%s %+v %+v", st.Phase, st.Profiles, st.Conditions)
		})
	}
	readyOn(a, "1.0.0")
	readyOn(b, "1.0.0")

	// The registry stops; a new version of hello and a profile needing a
	// pack and a Zarf package no cluster has pulled are published.
	srv.Stop()
	must(t, c.Create(ctx, helloProfile("1.1.0", "2")))
	extra := &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "extra-1.0.0", Namespace: controller.SharedNamespace},
		Spec: v1.ClusterProfileSpec{Name: "extra", Version: "1.0.0", Type: v1.ProfileAddOn, Layers: []v1.Layer{
			{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.30"}},
			{Name: "zarf-test", Kind: v1.LayerAddon, Zarf: &v1.ZarfSource{Package: "oci://" + srv.Host + "/fleet/zarf/test:0.0.1"}},
		}},
	}
	must(t, c.Create(ctx, extra))
	got := getCluster(t, c, b)
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Profiles = append(got.Spec.Profiles, v1.ProfileAttachment{Name: "extra", Version: "1.0.0"})
	must(t, c.Patch(ctx, got, patch))

	readyOn(a, "1.1.0")
	csA, err := wa.Clientset()
	must(t, err)
	waitFor(t, "cluster a's hello-universe at 2 replicas, from the cache", func() (bool, string) {
		d, err := csA.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 2, fmt.Sprint(err)
	})
	waitFor(t, "cluster b waiting, naming the registry and the pack", func() (bool, string) {
		cond := apimeta.FindStatusCondition(getCluster(t, c, b).Status.Conditions, v1.ConditionStalled)
		return cond != nil && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, srv.Host) && strings.Contains(cond.Message, "spegel"), fmt.Sprintf("%+v", cond)
	})
	csB, err := wb.Clientset()
	must(t, err)
	if _, err := csB.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster b's running layer was touched while it waits: %v", err)
	}

	// The registry is back: b converges, pack and Zarf package included.
	must(t, srv.Start())
	waitFor(t, "cluster b Ready with the extra profile", func() (bool, string) {
		got := getCluster(t, c, b)
		return got.Status.Phase == v1.ClusterReady && len(got.Status.Layers) == 3 && got.Status.ObservedGeneration == got.Generation,
			fmt.Sprintf("%s %+v %+v", got.Status.Phase, got.Status.Layers, got.Status.Conditions)
	})
	if _, err := csB.AppsV1().Deployments("nginx").Get(ctx, "nginx-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("the Zarf package's deployment on b: %v", err)
	}

	// Restart the manager with the registry down: everything in use comes
	// from the cache, a new version included.
	stop()
	srv.Stop()
	startManagerWith(t, mgmt, opts)
	must(t, c.Create(ctx, helloProfile("1.2.0", "3")))
	readyOn(a, "1.2.0")
	got = getCluster(t, c, b)
	patch = client.MergeFrom(got.DeepCopy())
	got.Spec.Profiles[0].Version = "1.1.0"
	must(t, c.Patch(ctx, got, patch))
	readyOn(b, "1.1.0")
	waitFor(t, "cluster b's hello-universe at 2 replicas after the restart", func() (bool, string) {
		d, err := csB.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 2, fmt.Sprint(err)
	})
}
