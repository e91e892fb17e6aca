package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/controlplane"
	"strata.dev/strata/internal/testenv"
)

func TestDeployDryRunDeployAndDiff(t *testing.T) {
	t.Parallel()
	cp, kubeconfig := workload(t)
	base := append([]string{"--kubeconfig", kubeconfig, "-f", "../../examples/addon-hello.yaml", "-f", "../../examples/addon-gitops.yaml"}, packFlags...)
	cluster := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cluster, `apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: shop}
spec:
  profiles:
    - {name: hello-apps, version: 1.0.0, variables: [{name: namespace, value: shop}, {name: replicas, value: "2"}]}
    - {name: gitops, version: 1.0.0, variables: [{name: apiKeySecret, value: "t0p-s3cret"}]}
`)
	withCluster := append(append([]string{}, base...), "--cluster", cluster)

	out, code := run(t, append([]string{"deploy", "--dry-run"}, withCluster...)...)
	if code != ExitOK || !strings.Contains(out, "hello-universe  install") || !strings.Contains(out, "nothing was applied") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	cs, _ := cp.Clientset()
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "shop", metav1.GetOptions{}); err == nil {
		t.Fatal("--dry-run created the namespace")
	}

	out, code = run(t, append([]string{"diff"}, withCluster...)...)
	if code != ExitFail || !strings.Contains(out, "hello-universe: install") {
		t.Errorf("diff before deploy: exit %d\n%s", code, out)
	}

	out, code = run(t, append([]string{"deploy", "-o", "json"}, withCluster...)...)
	if code != ExitOK {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "t0p-s3cret") {
		t.Errorf("deploy output shows a masked value")
	}
	var res struct {
		Layers []struct {
			Name, Action, Phase, Message string
			Objects                      int
			Writes                       int
		}
	}
	if err := json.Unmarshal([]byte(lastLine(out)), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if len(res.Layers) != 2 || res.Layers[0].Phase != "Ready" || res.Layers[1].Phase != "Ready" {
		t.Errorf("layers %+v", res.Layers)
	}
	dep, err := cs.AppsV1().Deployments("shop").Get(t.Context(), "hello-universe-deployment", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 2 {
		t.Errorf("hello-universe in namespace shop with 2 replicas: %v", err)
	}
	secret, err := cs.CoreV1().Secrets("akuity").Get(t.Context(), "akuity-agent-credentials", metav1.GetOptions{})
	if err != nil || string(secret.Data["AKUITY_API_KEY_SECRET"]) != "t0p-s3cret" {
		t.Errorf("the cluster must get the real masked value: %v", err)
	}

	if out, code := run(t, append([]string{"diff"}, withCluster...)...); code != ExitOK {
		t.Errorf("diff after deploy: exit %d\n%s", code, out)
	}

	// Bad input applies nothing and exits 2.
	if _, code := run(t, "deploy", "-f", "../../examples/addon-hello.yaml"); code != ExitUsage {
		t.Errorf("no --kubeconfig: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, "apiVersion: strata.dev/v1alpha1\nkind: Cluster\nmetadata: {name: shop}\nspec:\n  profiles: [{name: hello-apps, version: 1.0.0, variables: [{name: replicas, value: many}]}]\n")
	if out, code := run(t, append(append([]string{"deploy"}, base...), "--cluster", bad)...); code != ExitUsage {
		t.Errorf("invalid variable: exit %d, want 2\n%s", code, out)
	}
	unreachable := filepath.Join(t.TempDir(), "gone")
	writeFile(t, unreachable, strings.Replace(string(cp.Kubeconfig()), cp.Server(), "https://127.0.0.1:1", 1))
	if _, code := run(t, "deploy", "--kubeconfig", unreachable, "-f", "../../examples/addon-hello.yaml", "--packs", packCentral); code != ExitFail {
		t.Errorf("unreachable cluster: exit %d, want 1", code)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// workload starts a one-node workload cluster and writes its kubeconfig.
func workload(t *testing.T) (*controlplane.ControlPlane, string) {
	t.Helper()
	cp := testenv.WorkloadCluster(t, testenv.ClusterOptions{Nodes: 1})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeFile(t, kubeconfig, string(cp.Kubeconfig()))
	return cp, kubeconfig
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Packs of the patterns Palette accepts deploy as they are: a kernel layer,
// values that refer to their own pack, unquoted macros, an empty namespace,
// a schema rule with an unknown format, Helm's toYamlPretty in a manifest.
func TestDeployPalettePatternPacks(t *testing.T) {
	t.Parallel()
	cp, kubeconfig := workload(t)
	stackFile := filepath.Join(t.TempDir(), "stack.yaml")
	writeFile(t, stackFile, `apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: patterns-1.0.0}
spec:
  name: patterns
  version: 1.0.0
  type: add-on
  layers:
    - {name: mirror, kind: addon, pack: {name: self-reference, version: 0.1.0}}
    - {name: anywhere, kind: addon, pack: {name: no-namespace, version: 1.0.0}}
    - {name: form, kind: addon, pack: {name: form-app, version: 1.4.0}}
    - {name: odd, kind: addon, pack: {name: odd-version, version: 1.2.3.4}}
    - {name: quiet, kind: addon, pack: {name: quiet-app, version: 0.3.1}}
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: patterns}
spec:
  profiles: [{name: patterns, version: 1.0.0}]
`)
	out, code := run(t, "deploy", "--kubeconfig", kubeconfig, "-f", stackFile, "--packs", "../pack/testdata/accepted")
	if code != ExitOK {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	cs, err := cp.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range [][2]string{{"mirror", "mirror"}, {"default", "no-namespace"}, {"form", "form-app"}, {"default", "odd"}, {"quiet", "quiet-app"}} {
		ns, name := obj[0], obj[1]
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("ConfigMap %s/%s: %v", ns, name, err)
			continue
		}
		if name == "mirror" && cm.Data["greeting"] != "hello from mirror" {
			t.Errorf("mirror greeting %q, want the self-reference expanded", cm.Data["greeting"])
		}
	}
}
