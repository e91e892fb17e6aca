package stack

import (
	"os"
	"path/filepath"
	"testing"

	"strata.dev/strata/internal/profile"
)

// Profile and cluster documents come from users; reading, validating and
// resolving them must end in a stack or an error, never a panic.
func FuzzReadAndResolve(f *testing.F) {
	f.Add([]byte(`apiVersion: strata.dev/v1alpha1
kind: ClusterProfile
metadata: {name: p-1.0.0}
spec:
  name: p
  version: 1.0.0
  type: add-on
  variables: [{name: v, format: number, default: "1", regex: "[0-9]+"}]
  layers:
    - name: a
      kind: addon
      manifests: {inline: "kind: ConfigMap"}
      values: "x: {{.spectro.var.v}}"
      dependsOn: [a]
---
apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec:
  profiles: [{name: p, version: 1.0.0, variables: [{name: v, value: "2"}]}]
  overrides: [{layer: a, values: "y: {{.spectro.system.cluster.name}}"}]
`))
	f.Add([]byte("kind: Cluster\napiVersion: strata.dev/v1alpha1\nspec: {profiles: 3}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		docs, err := profile.ReadFiles(path)
		if err != nil {
			return
		}
		for _, p := range docs.Profiles {
			_, _ = ResolveProfile(p, nil, Facts{})
		}
		for _, c := range docs.Clusters {
			_, _ = ResolveStack(docs.Profiles, c, nil, Facts{})
		}
	})
}
