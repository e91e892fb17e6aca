package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strata.dev/strata/internal/testenv"
)

// The registry commands against a real registry with authentication: push
// every real pack, list, pull, lint, validate and deploy from the registry
// alone — no --packs folder anywhere.
func TestPackRegistryCommands(t *testing.T) {
	t.Parallel()
	const user, password = "ci", "pw-from-stdin"
	srv := testenv.StartRegistry(t, testenv.RegistryOptions{Username: user, Password: password})
	endpoint := srv.Endpoint("team/packs")
	cache := t.TempDir()
	reg := func(args ...string) []string {
		return append(args, "--plain-http", "--username", user, "--password-stdin", "--cache-dir", cache)
	}

	if _, _, code := runIn(t, "", "pack", "push", packCentral, endpoint, "--username", user, "--plain-http"); code != ExitUsage {
		t.Errorf("--username without --password-stdin: exit %d, want 2 (a password never goes in arguments)", code)
	}
	out, errOut, code := runIn(t, password, reg("pack", "push", packCentral, "../../packs", endpoint, "-o", "json")...)
	if code != ExitOK {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, errOut)
	}
	var pushed []struct{ Name, Version, Layer, Digest string }
	if err := json.Unmarshal([]byte(out), &pushed); err != nil || len(pushed) != 15 {
		t.Fatalf("push -o json: %v, %d packs, want 15\n%s", err, len(pushed), out)
	}
	if strings.Contains(out+errOut, password) {
		t.Error("the password is printed")
	}

	// A broken pack is refused before anything is pushed.
	_, errOut, code = runIn(t, password, reg("pack", "push", "../pack/testdata/broken/unknown-layer", endpoint)...)
	if code != ExitFail || !strings.Contains(errOut, `refused, lint errors`) || !strings.Contains(errOut, `unknown layer "database"`) {
		t.Errorf("pushing a broken pack: exit %d\n%s", code, errOut)
	}

	// A tag is not moved to other content without --force.
	changed := filepath.Join(t.TempDir(), "spegel")
	if err := os.CopyFS(changed, os.DirFS(filepath.Join(packCentral, "spegel-0.0.30"))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(changed, "NOTES.txt"), "rebuilt\n")
	if _, errOut, code := runIn(t, password, reg("pack", "push", changed, endpoint)...); code != ExitFail || !strings.Contains(errOut, "the tag holds other content") || !strings.Contains(errOut, "--force") {
		t.Errorf("moving a tag: exit %d\n%s", code, errOut)
	}

	out, _, code = runIn(t, password, reg("pack", "list", "--registry", endpoint, "-o", "json")...)
	var listed []struct{ Name, Version, Layer, Digest string }
	if err := json.Unmarshal([]byte(out), &listed); code != ExitOK || err != nil || len(listed) != 15 {
		t.Fatalf("list: exit %d, %v, %d packs\n%s", code, err, len(listed), out)
	}
	for i, e := range listed {
		if e.Layer == "" || !strings.HasPrefix(e.Digest, "sha256:") {
			t.Errorf("list entry %d: %+v", i, e)
		}
	}

	dest := t.TempDir()
	out, _, code = runIn(t, password, reg("pack", "pull", "hello-universe:1.2.0", "--registry", endpoint, "-d", dest)...)
	if code != ExitOK {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	if _, code := run(t, "pack", "lint", filepath.Join(dest, "hello-universe-1.2.0")); code != ExitOK {
		t.Errorf("the pulled pack does not lint clean")
	}
	out, _, code = runIn(t, password, reg("pack", "lint", "--registry", endpoint, "-o", "json")...)
	if code != ExitOK || !strings.Contains(out, "oci://"+srv.Host+"/team/packs/spectro-packs/archive/kubewatch:1.0.7") {
		t.Errorf("lint --registry: exit %d\n%s", code, out)
	}

	out, _, code = runIn(t, password, reg("profile", "validate", "-f", "../../examples", "--registry", endpoint)...)
	if code != ExitOK || !strings.Contains(out, `cluster "dev": valid`) {
		t.Errorf("validate from the registry alone: exit %d\n%s", code, out)
	}

	// Deploy from the registry alone to a real cluster: a pack, and a Zarf
	// package published there in Zarf's layout (same host, same access).
	srv.PublishZarf(t, "team/zarf/test", "0.0.1", "amd64", user, password,
		testenv.ZarfArchiveFiles(t, "../../../shared/testdata/zarf/packages/compressed/zarf-package-test-amd64-0.0.1.tar.zst"))
	zarfProfile := filepath.Join(t.TempDir(), "zarf.yaml")
	writeFile(t, zarfProfile, `apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: zarf-apps-1.0.0}
spec:
  name: zarf-apps
  version: 1.0.0
  type: add-on
  layers:
    - name: zarf-test
      kind: addon
      zarf: {package: "oci://`+srv.Host+`/team/zarf/test:0.0.1"}
`)
	cp, kubeconfig := workload(t)
	cluster := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cluster, `apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: shop}
spec:
  profiles:
    - {name: hello-apps, version: 1.0.0, variables: [{name: namespace, value: shop}]}
    - {name: zarf-apps, version: 1.0.0}
`)
	out, errOut, code = runIn(t, password, reg("deploy", "--kubeconfig", kubeconfig, "-f", "../../examples/addon-hello.yaml", "-f", zarfProfile, "--cluster", cluster, "--registry", endpoint)...)
	if code != ExitOK {
		t.Fatalf("deploy from the registry: exit %d\n%s\n%s", code, out, errOut)
	}
	cs, err := cp.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments("shop").Get(t.Context(), "hello-universe-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("hello-universe deployed from the registry: %v", err)
	}
	if _, err := cs.AppsV1().Deployments("nginx").Get(t.Context(), "nginx-deployment", metav1.GetOptions{}); err != nil {
		t.Errorf("the Zarf package's deployment, from the registry: %v", err)
	}
}
