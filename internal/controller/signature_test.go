package controller_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	helmregistry "helm.sh/helm/v4/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"oras.land/oras-go/v2/registry/remote"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/testenv"
)

// A PackRegistry that verifies signatures admits the packs signed with
// its key and refuses the others before anything of them runs: the
// cluster needing one is Stalled naming the pack, its version, digest and
// the signature's fault, and what it runs keeps running; the registry's
// status lists what it refused. A verify spec that cannot be used makes
// the registry unusable, with the field named — never trusted by accident.
func TestAVerifyingRegistryRunsOnlySignedPacks(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ep, _ := registry.ParseEndpoint(srv.Endpoint("signed"))
	pusher, err := registry.New(ep, registry.Options{PlainHTTP: true})
	must(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	ctx := context.Background()
	for _, dir := range []string{"hello-universe-1.2.0", "spegel-0.0.30"} {
		p, problems := pack.Load(filepath.Join("../../../shared/testdata/pack-central", dir))
		must(t, problems.Err())
		_, err := pusher.Push(ctx, p, false)
		must(t, err)
		if p.Name == "hello-universe" {
			_, err = pusher.Sign(ctx, p.Name, p.Version, key)
			must(t, err)
		}
	}

	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "fleet")
	noFolders, err := pack.LoadCatalog()
	must(t, err)
	startManagerWith(t, mgmt, controller.ManagerOptions{Packs: noFolders, PackCacheDir: t.TempDir(), LayerTimeout: 2 * time.Minute})
	pub, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	must(t, err)
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "signer", Namespace: "fleet"}, Data: map[string][]byte{"cosign.pub": pub, "junk": []byte("not a key")}}))
	verified := func(name string, ref v1.SecretKeyRef) *v1.PackRegistry {
		return &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}, Spec: v1.PackRegistrySpec{
			Endpoint: srv.Host, BaseContentPath: "signed", PlainHTTP: true,
			Verify: &v1.SignatureVerification{Provider: v1.SignatureCosign, PublicKeySecretRef: &ref},
		}}
	}
	must(t, c.Create(ctx, verified("signed", v1.SecretKeyRef{Name: "signer"})))
	waitFor(t, "the registry Ready, listing the unsigned pack as refused", func() (bool, string) {
		pr := &v1.PackRegistry{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "fleet", Name: "signed"}, pr))
		ready := apimeta.IsStatusConditionTrue(pr.Status.Conditions, v1.ConditionReady)
		ok := ready && len(pr.Status.Refused) == 1 && pr.Status.Refused[0].Name == "spegel" && pr.Status.Refused[0].Version == "0.0.30" &&
			strings.HasPrefix(pr.Status.Refused[0].Digest, "sha256:") && strings.Contains(pr.Status.Refused[0].Reason, "not signed")
		return ok, fmt.Sprintf("%+v", pr.Status)
	})

	p := helloProfile("1.0.0", "1")
	p.Namespace = "fleet"
	must(t, c.Create(ctx, p))
	extra := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "extra-1.0.0", Namespace: "fleet"}, Spec: v1.ClusterProfileSpec{
		Name: "extra", Version: "1.0.0", Type: v1.ProfileAddOn,
		Layers: []v1.Layer{{Name: "spegel", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "spegel", Version: "0.0.30"}}},
	}}
	must(t, c.Create(ctx, extra))
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	cluster := importCluster(t, c, "fleet", "store", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "hello", Version: "1.0.0"})
	waitFor(t, "the cluster Ready on the signed pack", func() (bool, string) {
		got := getCluster(t, c, cluster)
		return got.Status.Phase == v1.ClusterReady && len(got.Status.Layers) == 1, fmt.Sprintf("%s %+v", got.Status.Phase, got.Status.Conditions)
	})

	got := getCluster(t, c, cluster)
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Profiles = append(got.Spec.Profiles, v1.ProfileAttachment{Name: "extra", Version: "1.0.0"})
	must(t, c.Patch(ctx, got, patch))
	waitFor(t, "the cluster Stalled on the unsigned pack", func() (bool, string) {
		cond := apimeta.FindStatusCondition(getCluster(t, c, cluster).Status.Conditions, v1.ConditionStalled)
		ok := cond != nil && cond.Status == metav1.ConditionTrue
		for _, want := range []string{"spegel", "0.0.30", "sha256:", "signature: not signed"} {
			ok = ok && cond != nil && strings.Contains(cond.Message, want)
		}
		return ok, fmt.Sprintf("%+v", cond)
	})
	cs, err := workload.Clientset()
	must(t, err)
	if _, err := cs.AppsV1().DaemonSets("spegel-system").Get(ctx, "spegel", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the unsigned pack runs (%v)", err)
	}
	if _, err := cs.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("what ran before stopped running: %v", err)
	}

	// The same packs signed with notation: hello-universe under the trusted
	// authority's certificate.
	notary := testenv.NewNotationSigner(t, "acme")
	nep, _ := registry.ParseEndpoint(srv.Endpoint("notary"))
	npusher, err := registry.New(nep, registry.Options{PlainHTTP: true})
	must(t, err)
	for _, dir := range []string{"hello-universe-1.2.0", "spegel-0.0.30"} {
		p, problems := pack.Load(filepath.Join("../../../shared/testdata/pack-central", dir))
		must(t, problems.Err())
		_, err := npusher.Push(ctx, p, false)
		must(t, err)
		if p.Name == "hello-universe" {
			repo, err := remote.NewRepository(nep.PackRepository(p.Name))
			must(t, err)
			repo.PlainHTTP = true
			manifest, err := repo.Resolve(ctx, p.Version)
			must(t, err)
			notary.Sign(t, repo, manifest)
		}
	}
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "notary", Namespace: "fleet"}, Data: map[string][]byte{
		"trustpolicy.json": testenv.NotationPolicy("acme", nep.PackRepository("hello-universe"), nep.PackRepository("spegel")),
		"ca.acme.crt":      notary.RootPEM,
	}}))
	notarized := func(name, trustStore string) *v1.PackRegistry {
		return &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}, Spec: v1.PackRegistrySpec{
			Endpoint: srv.Host, BaseContentPath: "notary", PlainHTTP: true,
			Verify: &v1.SignatureVerification{Provider: v1.SignatureNotation,
				TrustPolicySecretRef: &v1.SecretKeyRef{Name: "notary"}, TrustStoreSecretRef: &v1.LocalObjectRef{Name: trustStore}},
		}}
	}
	must(t, c.Create(ctx, notarized("notary", "notary")))
	waitFor(t, "the notation registry Ready, refusing only the unsigned pack", func() (bool, string) {
		pr := &v1.PackRegistry{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "fleet", Name: "notary"}, pr))
		ready := apimeta.IsStatusConditionTrue(pr.Status.Conditions, v1.ConditionReady)
		ok := ready && len(pr.Status.Refused) == 1 && pr.Status.Refused[0].Name == "spegel" &&
			strings.Contains(pr.Status.Refused[0].Reason, "no Notary Project signature")
		return ok, fmt.Sprintf("%+v", pr.Status)
	})

	// Verification that cannot be set up: the registry is not used.
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "untyped-store", Namespace: "fleet"}, Data: map[string][]byte{"acme.crt": notary.RootPEM}}))
	invalid := map[string]string{
		"notary-no-store":      "spec.verify.trustStoreSecretRef: Secret fleet/absent",
		"notary-untyped-store": `trust store key "acme.crt": want <type>.<store name>.crt`,
	}
	must(t, c.Create(ctx, notarized("notary-no-store", "absent")))
	must(t, c.Create(ctx, notarized("notary-untyped-store", "untyped-store")))
	for name, tc := range map[string]struct {
		ref  v1.SecretKeyRef
		want string
	}{
		"no-secret": {v1.SecretKeyRef{Name: "absent"}, `spec.verify.publicKeySecretRef: Secret fleet/absent`},
		"no-key":    {v1.SecretKeyRef{Name: "signer", Key: "other.pub"}, `Secret fleet/signer has no key "other.pub"`},
		"junk":      {v1.SecretKeyRef{Name: "signer", Key: "junk"}, `spec.verify.publicKeySecretRef: key "junk" of Secret fleet/signer: not a PEM public key`},
	} {
		must(t, c.Create(ctx, verified(name, tc.ref)))
		invalid[name] = tc.want
	}
	for name, want := range invalid {
		waitFor(t, "registry "+name+" refused", func() (bool, string) {
			pr := &v1.PackRegistry{}
			must(t, c.Get(ctx, client.ObjectKey{Namespace: "fleet", Name: name}, pr))
			cond := apimeta.FindStatusCondition(pr.Status.Conditions, v1.ConditionReady)
			return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == "InvalidSpec" && strings.Contains(cond.Message, want), fmt.Sprintf("%+v", cond)
		})
	}
}

// A chart layer with chart.verify runs only a chart signed with the key its
// profile's namespace holds: the signed one is Ready, the unsigned one's
// layer fails saying why and nothing of it runs, and the other layers go
// on; a verify whose Secret is missing stalls the cluster naming the
// profile, the layer and the field.
func TestAVerifiedChartLayerRunsOnlySignedCharts(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	pushChart := func(file, ref string, sign bool) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("../../../shared/testdata/pack-central", file))
		must(t, err)
		client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
		must(t, err)
		_, err = client.Push(data, srv.Host+"/charts/"+ref)
		must(t, err)
		if !sign {
			return
		}
		repo, err := remote.NewRepository(srv.Host + "/charts/" + strings.Split(ref, ":")[0])
		must(t, err)
		repo.PlainHTTP = true
		manifest, err := repo.Resolve(ctx, strings.Split(ref, ":")[1])
		must(t, err)
		_, err = signature.SignCosign(ctx, repo, manifest, key)
		must(t, err)
	}
	pushChart("spegel-0.0.30/charts/spegel-0.0.30.tgz", "spegel:v0.0.30", true)
	pushChart("kubewatch-1.0.7/charts/kubewatch.tgz", "kubewatch:1.0.7", false)

	mgmt, c := emptyManagementPlane(t, controller.SharedNamespace, "fleet")
	noFolders, err := pack.LoadCatalog()
	must(t, err)
	startManagerWith(t, mgmt, controller.ManagerOptions{Packs: noFolders, PackCacheDir: t.TempDir(), LayerTimeout: 2 * time.Minute})
	// Charts on a registry's host are reached as the registry says (here:
	// plain HTTP).
	must(t, c.Create(ctx, &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "charts-host", Namespace: "fleet"}, Spec: v1.PackRegistrySpec{
		Endpoint: srv.Host, BaseContentPath: "packs", PlainHTTP: true,
	}}))
	waitFor(t, "the registry Ready", func() (bool, string) {
		pr := &v1.PackRegistry{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "fleet", Name: "charts-host"}, pr))
		return apimeta.IsStatusConditionTrue(pr.Status.Conditions, v1.ConditionReady), fmt.Sprintf("%+v", pr.Status.Conditions)
	})
	pub, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	must(t, err)
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "chart-signer", Namespace: controller.SharedNamespace}, Data: map[string][]byte{"cosign.pub": pub}}))
	verify := &v1.SignatureVerification{Provider: v1.SignatureCosign, PublicKeySecretRef: &v1.SecretKeyRef{Name: "chart-signer"}}
	chartLayer := func(name, chart, version string) v1.Layer {
		return v1.Layer{Name: name, Kind: v1.LayerAddon, Chart: &v1.ChartSource{Repository: "oci://" + srv.Host + "/charts", Name: chart, Version: version, Verify: verify}}
	}
	p := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "charts-1.0.0", Namespace: controller.SharedNamespace}, Spec: v1.ClusterProfileSpec{
		Name: "charts", Version: "1.0.0", Type: v1.ProfileAddOn,
		Layers: []v1.Layer{
			chartLayer("mirror", "spegel", "v0.0.30"),
			chartLayer("watch", "kubewatch", "1.0.7"),
			{Name: "config", Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{Inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: charts-config, namespace: default}\n"}},
		},
	}}
	must(t, c.Create(ctx, p))
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	cluster := importCluster(t, c, "fleet", "store", workload.Kubeconfig(), v1.UpdateAutomatic, v1.ProfileAttachment{Name: "charts", Version: "1.0.0"})
	waitFor(t, "the signed chart Ready, the unsigned one refused", func() (bool, string) {
		got := getCluster(t, c, cluster)
		phases := map[string]string{}
		var watchMessage string
		for _, l := range got.Status.Layers {
			phases[l.Name] = l.Phase
			if l.Name == "watch" {
				watchMessage = l.Message
			}
		}
		ok := phases["mirror"] == "Ready" && phases["config"] == "Ready" && phases["watch"] == "Failed"
		for _, want := range []string{"chart oci://" + srv.Host + "/charts/kubewatch:1.0.7", "sha256:", "signature: not signed"} {
			ok = ok && strings.Contains(watchMessage, want)
		}
		return ok, fmt.Sprintf("%v %q", phases, watchMessage)
	})
	cs, err := workload.Clientset()
	must(t, err)
	deployments, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	must(t, err)
	for _, d := range deployments.Items {
		if strings.Contains(d.Name, "kubewatch") {
			t.Errorf("the unsigned chart runs: deployment %s/%s", d.Namespace, d.Name)
		}
	}

	// The key's Secret gone: nothing is trusted by accident.
	must(t, c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "chart-signer", Namespace: controller.SharedNamespace}}))
	waitFor(t, "the cluster Stalled on the missing key", func() (bool, string) {
		cond := apimeta.FindStatusCondition(getCluster(t, c, cluster).Status.Conditions, v1.ConditionStalled)
		ok := cond != nil && cond.Status == metav1.ConditionTrue &&
			strings.Contains(cond.Message, `clusterprofile strata-system/charts-1.0.0: layer "mirror" chart.verify.publicKeySecretRef: Secret strata-system/chart-signer`)
		return ok, fmt.Sprintf("%+v", cond)
	})
}
