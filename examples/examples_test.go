// Package examples holds example profiles and clusters; this test proves
// that a management plane accepts every file as it is (kubectl apply -R -f).
package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/internal/testenv"
)

func TestManagementPlaneAcceptsEveryExample(t *testing.T) {
	t.Parallel()
	cfg := testenv.Management(t, "../config/crd/bases")
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.yaml")
	releases, _ := filepath.Glob("releases/*.yaml")
	files = append(files, releases...)
	if err != nil || len(files) == 0 || len(releases) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		obj.SetNamespace("default")
		sent := obj.DeepCopy()
		if err := c.Create(t.Context(), obj); err != nil {
			t.Errorf("%s: refused by the API server: %v", f, err)
			continue
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(sent.GroupVersionKind())
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(sent), got); err != nil {
			t.Fatal(err)
		}
		// Everything sent must be stored: a field the schema does not know
		// would be pruned silently. Defaults the server adds are fine.
		if path, ok := contains(got.Object["spec"], sent.Object["spec"], "spec"); !ok {
			t.Errorf("%s: the API server dropped or changed %s", f, path)
		}
	}
}

// contains reports whether have holds everything in want, and where not.
func contains(have, want any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return path, false
		}
		for k, v := range w {
			if p, ok := contains(h[k], v, path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := contains(h[i], w[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, fmt.Sprint(have) == fmt.Sprint(want)
	}
}
