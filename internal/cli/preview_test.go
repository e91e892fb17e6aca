package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

const previewProfiles = `apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: hello-1.0.0}
spec:
  name: hello
  version: 1.0.0
  type: add-on
  variables:
    - {name: namespace, default: hello-universe}
    - {name: replicas, format: number, default: "1"}
  layers:
    - name: hello-universe
      kind: addon
      pack: {name: hello-universe, version: 1.2.0}
      values: |
        manifests:
          hello-universe:
            namespace: {{.spectro.var.namespace}}
            replicas: {{.spectro.var.replicas}}
    - {name: mirror, kind: addon, pack: {name: spegel, version: 0.0.18}}
    - name: config
      kind: addon
      manifests:
        inline: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: hello-config, namespace: default}
---
apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: hello-1.1.0}
spec:
  name: hello
  version: 1.1.0
  draft: true
  type: add-on
  variables:
    - {name: namespace, default: hello-universe, regex: "^[a-z0-9-]+$"}
    - {name: replicas, format: number, default: "1"}
  layers:
    - name: hello-universe
      kind: addon
      pack: {name: hello-universe, version: 1.2.0}
      values: |
        manifests:
          hello-universe:
            namespace: {{.spectro.var.namespace}}
            replicas: {{.spectro.var.replicas}}
    - {name: mirror, kind: addon, pack: {name: spegel, version: 0.0.30}}
`

const previewClusters = `apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: store-1, namespace: edge}
spec:
  profiles: [{name: hello, version: 1.x, variables: [{name: replicas, value: "2"}]}]
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: store-2, namespace: edge}
spec:
  profiles: [{name: hello, version: 1.x, variables: [{name: namespace, value: team-b}]}]
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: store-3, namespace: edge}
spec:
  profiles: [{name: hello, version: 1.x, variables: [{name: namespace, value: Team_A}]}]
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: pinned, namespace: edge}
spec:
  profiles: [{name: hello, version: 1.0.0}]
`

// A draft that upgrades one layer, removes one and whose new variable
// rule one cluster's value breaks: two clusters would change (with the
// right actions), one would refuse naming the field, the pinned one is
// not concerned.
func TestProfilePreviewOffline(t *testing.T) {
	dir := t.TempDir()
	profiles, clusters := filepath.Join(dir, "profiles.yaml"), filepath.Join(dir, "clusters.yaml")
	writeFile(t, profiles, previewProfiles)
	writeFile(t, clusters, previewClusters)
	args := []string{"profile", "preview", "-f", profiles, "--clusters", clusters, "--packs", "../../../shared/testdata/pack-central"}

	out, code := run(t, append(args, "-o", "json")...)
	if code != ExitFail {
		t.Errorf("exit %d, want %d: a cluster would refuse", code, ExitFail)
	}
	var impact struct {
		Profile, Version string
		Clusters         []struct {
			Namespace, Name, From, Refused string
			Layers                         []struct {
				Name, Action, FromVersion, ToVersion string
				ValuesChanged                        bool
			}
		}
		Summary struct{ Change, Unchanged, Refused int }
	}
	if err := json.Unmarshal([]byte(out), &impact); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if impact.Profile != "hello" || impact.Version != "1.1.0" || impact.Summary.Change != 2 || impact.Summary.Refused != 1 || impact.Summary.Unchanged != 0 || len(impact.Clusters) != 3 {
		t.Fatalf("impact %+v", impact)
	}
	for _, c := range impact.Clusters {
		if c.From != "1.0.0" {
			t.Errorf("%s: from %q, want 1.0.0", c.Name, c.From)
		}
		if c.Name == "store-3" {
			if !strings.Contains(c.Refused, "namespace") || !strings.Contains(c.Refused, "Team_A") || len(c.Layers) != 0 {
				t.Errorf("store-3: refused %q, layers %v; want the variable named", c.Refused, c.Layers)
			}
			continue
		}
		actions := map[string]string{}
		for _, l := range c.Layers {
			actions[l.Name] = l.Action
			if l.Name == "mirror" && (l.FromVersion != "0.0.18" || l.ToVersion != "0.0.30") {
				t.Errorf("%s: mirror %s → %s", c.Name, l.FromVersion, l.ToVersion)
			}
		}
		if c.Refused != "" || actions["hello-universe"] != "unchanged" || actions["mirror"] != "upgrade" || actions["config"] != "remove" {
			t.Errorf("%s: refused %q, actions %v", c.Name, c.Refused, actions)
		}
	}

	out, _ = run(t, args...)
	for _, want := range []string{"hello 1.1.0: 2 would change, 0 unchanged, 1 would refuse", "edge/store-1  1.0.0  mirror 0.0.18 → 0.0.30, config remove"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q\n%s", want, out)
		}
	}
	out, _ = run(t, append(args, "--cluster", "store-1")...)
	if !strings.Contains(out, "mirror: upgrade 0.0.18 → 0.0.30") || !strings.Contains(out, "config: remove") || !strings.Contains(out, "--- runs") {
		t.Errorf("one cluster's plan:\n%s", out)
	}
}
