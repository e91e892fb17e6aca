package v1alpha1_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/testenv"
)

// The CRDs' own rules (schema patterns and CEL) refuse what can be judged on
// one object, on a real API server.
func TestCRDsRefuseInvalidObjects(t *testing.T) {
	t.Parallel()
	cfg := testenv.Management(t, "../../config/crd/bases")
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	valid := func() *v1.ClusterProfile {
		return &v1.ClusterProfile{
			ObjectMeta: metav1.ObjectMeta{Name: "apps-1.0.0", Namespace: "default"},
			Spec: v1.ClusterProfileSpec{
				Name: "apps", Version: "1.0.0", Type: v1.ProfileAddOn,
				Layers: []v1.Layer{{Name: "hello", Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: "hello-universe", Version: "1.2.0"}}},
			},
		}
	}
	if err := c.Create(ctx, valid()); err != nil {
		t.Fatalf("valid profile refused: %v", err)
	}

	cases := []struct {
		name   string
		mutate func(*v1.ClusterProfile)
		want   string
	}{
		{"name not <name>-<version>", func(p *v1.ClusterProfile) { p.Name = "apps-latest" }, "metadata.name must be <spec.name>-<spec.version>"},
		{"version not semver", func(p *v1.ClusterProfile) { p.Spec.Version, p.Name = "1.0", "apps-1.0" }, "spec.version"},
		{"two sources", func(p *v1.ClusterProfile) {
			p.Spec.Layers[0].Chart = &v1.ChartSource{Repository: "oci://127.0.0.1/charts", Name: "x", Version: "1.0.0"}
		}, "exactly one source"},
		{"no source", func(p *v1.ClusterProfile) { p.Spec.Layers[0].Pack = nil }, "exactly one source"},
		{"infra layer in add-on profile", func(p *v1.ClusterProfile) { p.Spec.Layers[0].Kind = v1.LayerCNI }, "only addon layers"},
		{"unknown layer kind", func(p *v1.ClusterProfile) { p.Spec.Layers[0].Kind = "database" }, "spec.layers[0].kind"},
		{"dropdown without options", func(p *v1.ClusterProfile) {
			p.Spec.Variables = []v1.Variable{{Name: "size", Input: v1.InputDropdown}}
		}, "a dropdown variable needs options"},
		{"duplicate layer names", func(p *v1.ClusterProfile) {
			p.Spec.Layers = append(p.Spec.Layers, p.Spec.Layers[0])
		}, "Duplicate value"},
	}
	for i, tc := range cases {
		p := valid()
		p.Name = strings.Replace(p.Name, "1.0.0", "1.0."+string(rune('1'+i)), 1)
		p.Spec.Version = strings.TrimPrefix(p.Name, "apps-")
		tc.mutate(p)
		err := c.Create(ctx, p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
