package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/registry"
	"strata.dev/strata/internal/testenv"
)

func keyOf(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}

// An agent with no pack folder pulls its packs from the project's
// PackRegistry, with the credentials and CA of the Secrets it names —
// which the agent may read by name, and no other Secret.

func TestAgentPullsPacksFromAPackRegistry(t *testing.T) {
	const user, password = "edge", "registry-pw-7"
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Username: user, Password: password})
	ep, _ := registry.ParseEndpoint(srv.Endpoint("edge"))
	pusher, err := registry.New(ep, registry.Options{Credentials: &registry.Credentials{Username: user, Password: password}, CAPEM: srv.CAPEM})
	must(t, err)
	hello, problems := pack.Load(filepath.Join(packDirs[0], "hello-universe-1.2.0"))
	must(t, problems.Err())
	_, err = pusher.Push(context.Background(), hello, false)
	must(t, err)

	f := newHollowFleet(t)
	noFolders, err := pack.LoadCatalog()
	must(t, err)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: noFolders, PackCacheDir: t.TempDir(), LayerTimeout: 2 * time.Minute})
	ctx := context.Background()
	for name, data := range map[string]map[string][]byte{
		"registry-creds": {"username": []byte(user), "password": []byte(password)},
		"registry-ca":    {"ca.crt": srv.CAPEM},
		"unrelated":      {"token": []byte("not for agents")},
	} {
		must(t, f.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "fleet"}, Data: data}))
	}
	must(t, f.c.Create(ctx, &v1.PackRegistry{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "fleet"}, Spec: v1.PackRegistrySpec{
		Endpoint: srv.Host, BaseContentPath: "edge", CredentialsSecretRef: &v1.LocalObjectRef{Name: "registry-creds"}, CASecretRef: &v1.LocalObjectRef{Name: "registry-ca"},
	}}))
	p := helloProfile("1.0.0", "1")
	p.Namespace = "fleet"
	must(t, f.c.Create(ctx, p))
	site := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "store", Namespace: "fleet"}, Spec: v1.ClusterSpec{
		Mode: v1.ModeAgent, Profiles: []v1.ProfileAttachment{{Name: "hello", Version: "1.0.0"}},
	}}
	must(t, f.c.Create(ctx, site))

	kubeconfig := testenv.Kubeconfig(t, f.mgmt)
	args := strings.Fields(strataCLI(t, "cluster", "join-command", "store", "-n", "fleet", "--kubeconfig", kubeconfig))
	workload := testenv.WorkloadCluster(t, testenv.ClusterOptions{Name: "store", Nodes: 1})
	// The line join-command prints, as it is, and where the agent reaches
	// its cluster: the project's registry serves it with no flag about
	// packs, through a cache in the user's cache folder.
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	_, agentLog := startAgentLogged(t, append(args[2:], "--kubeconfig", workload.KubeconfigPath(), "--heartbeat", "1s"))
	waitFor(t, "the agent's cluster Ready from the registry's pack", func() (bool, string) {
		got := getCluster(t, f.c, site)
		ok := got.Status.Phase == v1.ClusterReady && len(got.Status.Layers) == 1 && got.Status.Layers[0].Digest != ""
		return ok, fmt.Sprintf("%+v", got.Status)
	})
	if entries, err := os.ReadDir(filepath.Join(cache, "strata", "agent-packs")); err != nil || len(entries) == 0 {
		t.Errorf("the agent kept no pack in the user cache folder: %v", err)
	}
	if strings.Contains(agentLog.String(), "SetLogger") || strings.Contains(agentLog.String(), "goroutine ") {
		t.Errorf("the agent's log has a stack trace:\n%s", agentLog.String())
	}
	ws := kubernetes.NewForConfigOrDie(workload.RESTConfig())
	if _, err := ws.AppsV1().Deployments("hello-universe").Get(ctx, "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("the pack's deployment: %v", err)
	}

	agentClient, _ := agentCredentials(t, ctx, ws, f.mgmt, strings.TrimPrefix(f.mgmt.Host, "https://"))
	if err := agentClient.Get(ctx, keyOf("fleet", "registry-creds"), &corev1.Secret{}); err != nil {
		t.Errorf("the agent cannot read its registry's credentials: %v", err)
	}
	if err := agentClient.Get(ctx, keyOf("fleet", "unrelated"), &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Errorf("reading a Secret no registry names: %v, want Forbidden", err)
	}
}

// A profile version whose chart layer checks signatures with a key in a
// Secret lets the agents read that Secret once it is published, even a
// version no cluster takes yet.
func TestANewVersionNamingAKeyLetsTheAgentsReadIt(t *testing.T) {
	f := newHollowFleet(t)
	startManager(t, f.mgmt, controller.ManagerOptions{Packs: f.packs})
	ctx := context.Background()
	must(t, f.c.Create(ctx, helloProfile("1.0.0", "1")))
	// Registered and shown connected for hours: nothing but the new
	// version makes the manager look at the cluster again.
	f.grow(t, 1, time.Hour)
	waitFor(t, "the cluster Ready on 1.0.0", f.allOn(t, "1.0.0"))
	grants := func() (bool, string) {
		role := &rbacv1.Role{}
		if err := f.c.Get(ctx, keyOf(controller.SharedNamespace, "strata-agent-shared"), role); err != nil {
			return false, err.Error()
		}
		for _, rule := range role.Rules {
			if slices.Contains(rule.Resources, "secrets") && slices.Contains(rule.ResourceNames, "chart-key") && slices.Contains(rule.Verbs, "get") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("the agents' shared rules: %+v", role.Rules)
	}
	if ok, _ := grants(); ok {
		t.Fatal("the agents may read chart-key before any profile names it")
	}
	// Beyond the cluster's range (1.x): its agent has nothing to report.
	signed := helloProfile("2.0.0", "1")
	signed.Spec.Layers = append(signed.Spec.Layers, v1.Layer{Name: "signed", Kind: v1.LayerAddon, Chart: &v1.ChartSource{
		Repository: "oci://127.0.0.1:5000/charts/signed", Version: "1.0.0",
		Verify: &v1.SignatureVerification{Provider: v1.SignatureCosign, PublicKeySecretRef: &v1.SecretKeyRef{Name: "chart-key", Key: "cosign.pub"}},
	}})
	must(t, f.c.Create(ctx, signed))
	waitFor(t, "the agents' shared Role letting them read chart-key", grants)
}
