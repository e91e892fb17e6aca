package render_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/render"
	"strata.dev/strata/internal/stack"
)

const packCentral = "../../../shared/testdata/pack-central"

// Every real pack renders to objects with its defaults, on Kubernetes 1.37.
func TestEveryRealPackRenders(t *testing.T) {
	paths, err := pack.Discover(packCentral)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, problems := pack.Load(path)
			if err := problems.Err(); err != nil {
				t.Fatal(err)
			}
			// Values the chart itself requires (akuity-agent) come from the user.
			values := p.Values
			if p.Name == "akuity-agent" {
				values = map[string]any{"charts": map[string]any{"akuity-agent": map[string]any{
					"clusterName": "c1", "instanceName": "argocd", "organizationName": "org",
					"akuityApiKeyId": "id", "akuityApiKeySecret": "secret",
				}}}
			}
			l := stack.Layer{
				Name: p.Name, Profile: "test", ProfileVersion: "1.0.0", Source: stack.SourcePack,
				Package: p.Name, Version: p.Version, Namespace: "default", ReleaseName: p.Name,
				Values: values, Pack: p,
			}
			out, err := render.Manifests(l, render.Options{KubeVersion: "1.37.2", ClusterName: "c1", APIServer: "127.0.0.1:6443"})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(objects(t, out)); n == 0 {
				t.Errorf("rendered no objects:\n%s", out)
			}
		})
	}
}

func TestHelloUniverseObjectsFollowVariablesAndPresets(t *testing.T) {
	catalog, err := pack.LoadCatalog(packCentral, "../../packs")
	if err != nil {
		t.Fatal(err)
	}
	profileYAML := func(presets string) string {
		return `
apiVersion: strata.dev/v1alpha1
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
      presets: ` + presets + `
      values: |
        manifests:
          hello-universe:
            namespace: {{.spectro.var.namespace}}
            replicas: {{.spectro.var.replicas}}
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  profiles:
    - name: hello
      version: 1.0.0
      variables: [{name: namespace, value: team-a}, {name: replicas, value: "3"}]
`
	}
	render1 := func(presets string) []map[string]any {
		path := filepath.Join(t.TempDir(), "hello.yaml")
		if err := os.WriteFile(path, []byte(profileYAML(presets)), 0o644); err != nil {
			t.Fatal(err)
		}
		docs, err := profile.ReadFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		// An add-on profile alone: preview the profile with the cluster's
		// variables by resolving the cluster without its infra requirement.
		st, err := stack.ResolveProfile(withVariables(docs), catalog, stack.Facts{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := render.Manifests(st.Layers[0], render.Options{KubeVersion: "1.37.2"})
		if err != nil {
			t.Fatal(err)
		}
		return objects(t, out)
	}

	objs := render1("[]")
	dep := find(objs, "Deployment", "hello-universe-deployment")
	if dep == nil {
		t.Fatalf("no hello-universe-deployment in %v", names(objs))
	}
	if ns := dep["metadata"].(map[string]any)["namespace"]; ns != "team-a" {
		t.Errorf("deployment namespace = %v, want team-a", ns)
	}
	if r := dep["spec"].(map[string]any)["replicas"]; r != 3.0 {
		t.Errorf("replicas = %v, want 3", r)
	}
	if find(objs, "Deployment", "api") != nil {
		t.Errorf("API deployed without the enable-api preset")
	}

	objs = render1(`["Backend:enable-api"]`)
	if find(objs, "Deployment", "api") == nil || find(objs, "Deployment", "postgres") == nil {
		t.Errorf("enable-api preset: no API deployment in %v", names(objs))
	}
}

// withVariables turns the cluster's variable values into the profile's
// defaults, so ResolveProfile previews exactly what the cluster would get.
func withVariables(docs *profile.Documents) profile.Profile {
	p := docs.Profiles[0]
	for _, vv := range docs.Clusters[0].Spec.Profiles[0].Variables {
		for i := range p.Spec.Variables {
			if p.Spec.Variables[i].Name == vv.Name {
				p.Spec.Variables[i].Default = vv.Value
			}
		}
	}
	return p
}

func objects(t *testing.T, manifests string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, doc := range strings.Split(manifests, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if m["kind"] != nil {
			out = append(out, m)
		}
	}
	return out
}

func find(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		if o["kind"] == kind && o["metadata"].(map[string]any)["name"] == name {
			return o
		}
	}
	return nil
}

func names(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o["kind"].(string)+"/"+o["metadata"].(map[string]any)["name"].(string))
	}
	return out
}

// A pack manifest reads its cluster's name and API server as .Spectro.x,
// as Palette serves them (permission-manager adds the scheme itself).
func TestPackManifestsReadTheirCluster(t *testing.T) {
	p, problems := pack.Load(filepath.Join(packCentral, "permission-manager-1.0.0"))
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	l := stack.Layer{
		Name: p.Name, Profile: "test", ProfileVersion: "1.0.0", Source: stack.SourcePack,
		Package: p.Name, Version: p.Version, Namespace: "permission-manager", ReleaseName: p.Name,
		Values: p.Values, Pack: p,
	}
	out, err := render.Manifests(l, render.Options{KubeVersion: "1.37.2", ClusterName: "edge-7", APIServer: "10.0.0.1:6443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- name: CLUSTER_NAME\n              value: \"edge-7\"", "value: \"https://10.0.0.1:6443\""} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered manifests lack %q", want)
		}
	}
}
