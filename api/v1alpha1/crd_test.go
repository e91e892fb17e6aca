package v1alpha1_test

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
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
		{"negative maxFailures", func(p *v1.ClusterProfile) {
			p.Spec.Rollout = &v1.RolloutPolicy{MaxFailures: ptr.To[int32](-1)}
		}, "spec.rollout.maxFailures"},
		{"maxParallel 0", func(p *v1.ClusterProfile) {
			p.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary", MaxParallel: ptr.To(intstr.FromInt32(0))}}}
		}, "a number of at least 1 or a percentage"},
		{"maxParallel 150%", func(p *v1.ClusterProfile) {
			p.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary", MaxParallel: ptr.To(intstr.FromString("150%"))}}}
		}, "a number of at least 1 or a percentage"},
		{"two waves of one name", func(p *v1.ClusterProfile) {
			p.Spec.Rollout = &v1.RolloutPolicy{Waves: []v1.Wave{{Name: "canary"}, {Name: "canary"}}}
		}, "Duplicate value"},
		{"unknown onFailure", func(p *v1.ClusterProfile) {
			p.Spec.Rollout = &v1.RolloutPolicy{OnFailure: "Retry"}
		}, "spec.rollout.onFailure"},
	}
	for i, tc := range cases {
		p := valid()
		p.Name = strings.Replace(p.Name, "1.0.0", fmt.Sprintf("1.0.%d", i+1), 1)
		p.Spec.Version = strings.TrimPrefix(p.Name, "apps-")
		tc.mutate(p)
		err := c.Create(ctx, p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}

	// What a typed client cannot send: a duration without its unit, and a
	// field the schema does not know (refused under strict validation, as
	// kubectl and strata apply ask).
	raw := []struct{ name, rollout, want string }{
		{"soak without unit", `{"waves": [{"name": "canary", "soak": "2"}]}`, "spec.rollout.waves[0].soak"},
		{"deadline without unit", `{"progressDeadline": "300"}`, "spec.rollout.progressDeadline"},
		{"unknown field", `{"waves": [{"name": "canary", "maxParalel": 1}]}`, `unknown field "spec.rollout.waves[0].maxParalel"`},
	}
	for i, tc := range raw {
		version := fmt.Sprintf("2.0.%d", i)
		u := &unstructured.Unstructured{}
		doc := fmt.Sprintf(`{"apiVersion": "strata.dev/v1alpha1", "kind": "ClusterProfile", "metadata": {"name": "apps-%[1]s", "namespace": "default"},
			"spec": {"name": "apps", "version": "%[1]s", "type": "add-on", "rollout": %[2]s,
			"layers": [{"name": "hello", "kind": "addon", "pack": {"name": "hello-universe", "version": "1.2.0"}}]}}`, version, tc.rollout)
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		err := c.Create(ctx, u, client.FieldValidation("Strict"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
