package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var packFlags = []string{"--packs", packCentral, "--packs", "../../packs"}

func TestExamplesValidate(t *testing.T) {
	out, code := run(t, append([]string{"profile", "validate", "-f", "../../examples"}, packFlags...)...)
	if code != ExitOK {
		t.Fatalf("examples: exit %d\n%s", code, out)
	}
	for _, want := range []string{`profile "local-infra" 1.0.0: valid`, `cluster "dev": valid`, `cluster "edge-1": valid`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateReportsProblemsWithExitOne(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	err := os.WriteFile(bad, []byte(`apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: broken}
spec:
  profiles: [{name: local-infra, version: 1.0.0, variables: [{name: nfsServer, value: nfs.local}]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, append([]string{"profile", "validate", "-f", "../../examples/infra-local.yaml", "-f", bad}, packFlags...)...)
	if code != ExitFail {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	want := bad + `: cluster "broken": spec.profiles[0].variables[name=nfsServer]: variable "nfsServer" of profile "local-infra": "nfs.local": want an IPv4 address`
	if !strings.Contains(out, want) {
		t.Errorf("output lacks\n%s\ngot:\n%s", want, out)
	}
	if _, code := run(t, "profile", "validate"); code != ExitUsage {
		t.Errorf("no -f: exit %d, want 2", code)
	}
}

func TestRenderRedactsMaskedValuesUnlessAsked(t *testing.T) {
	args := append([]string{"profile", "render", "-f", "../../examples"}, packFlags...)
	for _, extra := range [][]string{nil, {"--objects"}, {"-o", "json"}} {
		out, code := run(t, append(append([]string{}, args...), extra...)...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d\n%s", extra, code, out)
		}
		if strings.Contains(out, "s3cret-edge-1") {
			t.Errorf("%v: the masked API key secret is printed", extra)
		}
		if !strings.Contains(out, "(masked)") {
			t.Errorf("%v: no (masked) placeholder", extra)
		}
	}
	out, _ := run(t, append(args, "--objects", "--show-secrets")...)
	if !strings.Contains(out, "s3cret-edge-1") {
		t.Errorf("--show-secrets: the secret is not shown")
	}
}

func TestRenderObjectsInInstallOrder(t *testing.T) {
	out, code := run(t, append([]string{"profile", "render", "-f", "../../examples", "--cluster", "../../examples/cluster-dev.yaml", "--objects"}, packFlags...)...)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var layers []string
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "# Layer: "); ok {
			layers = append(layers, strings.Fields(name)[0])
		}
	}
	if got := strings.Join(layers, ","); got != "os,kubernetes,antrea,nfs,hello-universe,spegel" {
		t.Errorf("layers in order %s", got)
	}
	if !strings.Contains(out, "namespace: hello-dev") || !strings.Contains(out, "replicas: 2") {
		t.Errorf("hello-universe objects do not follow the dev cluster's variables")
	}
}

// An imported cluster that attaches only add-on profiles is valid offline,
// as the manager accepts it; warnings are printed and never fail the run.
func TestValidateImportedAddOnOnlyClusterWithWarnings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "imported.yaml")
	err := os.WriteFile(file, []byte(`apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: agents-1.0.0}
spec:
  name: agents
  version: 1.0.0
  type: add-on
  layers:
    - {name: agent, kind: addon, pack: {name: fleet-agent, version: 2.0.0}}
    - {name: form, kind: addon, pack: {name: form-app, version: 1.4.0}}
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: existing}
spec:
  kubeconfigSecretRef: {name: existing-kubeconfig}
  profiles: [{name: agents, version: 1.0.0}]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "profile", "validate", "-f", file, "--packs", "../pack/testdata/accepted")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	for _, want := range []string{
		`cluster "existing": valid`,
		`warning: ` + file + ` (document 2): cluster "existing": layer "agent": pack fleet-agent-2.0.0 states minimum node resources`,
		`schema.yaml: pack form-app-1.4.0: manifests.form-app.greeting.schema: format "${input}": unknown type ${input}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A roll-out duration without its unit is an input error naming the field.
func TestRolloutDurationWithoutUnit(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "rollout.yaml")
	writeFile(t, bad, `apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: web-1.0.0}
spec:
  name: web
  version: 1.0.0
  type: add-on
  rollout:
    waves: [{name: canary, soak: "2"}]
  layers: [{name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}}]
`)
	root := NewRootCommand(io.Discard, io.Discard)
	root.SetArgs(append([]string{"profile", "validate", "-f", bad}, packFlags...))
	err := root.Execute()
	if exitCode(err) != ExitFail || !strings.Contains(fmt.Sprint(err), bad+": ClusterProfile: spec.rollout.waves[0].soak: 2: want a duration with its unit") {
		t.Errorf("exit %d: %v", exitCode(err), err)
	}
}
