package rollout

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

// addon is an add-on profile version with one manifest layer and a
// variable "size" that the version's rule checks.
func addon(name, version, rule string) profile.Profile {
	return profile.Profile{ClusterProfile: &v1.ClusterProfile{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + version},
		Spec: v1.ClusterProfileSpec{
			Name: name, Version: version, Type: v1.ProfileAddOn,
			Variables: []v1.Variable{{Name: "size", Default: "1", Regex: rule}},
			Layers: []v1.Layer{{Name: name, Kind: v1.LayerAddon, Manifests: &v1.ManifestSource{
				Inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: default}\ndata: {size: \"{{.spectro.var.size}}\"}\n",
			}}},
		},
	}, Source: profile.Source{File: name + "-" + version + ".yaml"}}
}

// The newest version of one followed profile refuses the cluster's value:
// that profile stays on the version it runs, the other moves on.
func TestHoldBack(t *testing.T) {
	visible := []profile.Profile{
		addon("web", "1.0.0", ""), addon("web", "1.1.0", ""),
		addon("db", "1.0.0", ""), addon("db", "1.1.0", "^[1-3]$"),
	}
	cluster := func(webVersion string) *v1.Cluster {
		return &v1.Cluster{
			ObjectMeta: metav1.ObjectMeta{Name: "store", Namespace: "edge"},
			Spec: v1.ClusterSpec{Provider: v1.ProviderImported, Profiles: []v1.ProfileAttachment{
				{Name: "web", Version: webVersion},
				{Name: "db", Version: "1.x", Variables: []v1.VariableValue{{Name: "size", Value: "5"}}},
			}},
			Status: v1.ClusterStatus{Profiles: []v1.ProfileStatus{{Name: "web", Version: "1.0.0"}, {Name: "db", Version: "1.0.0"}}},
		}
	}
	resolveFor := func(c *v1.Cluster) Resolve {
		return func(atts []v1.ProfileAttachment) (*stack.Stack, error) {
			g := c.DeepCopy()
			g.Spec.Profiles = atts
			return stack.ResolveStack(visible, profile.Cluster{Cluster: g, Source: profile.Source{File: "store.yaml"}}, nil, stack.Facts{})
		}
	}
	picked := []v1.ProfileAttachment{{Name: "web", Version: "1.1.0"}, {Name: "db", Version: "1.1.0", Variables: []v1.VariableValue{{Name: "size", Value: "5"}}}}

	c := cluster("1.x")
	if _, err := resolveFor(c)(picked); err == nil {
		t.Fatal("db 1.1.0 resolves with size 5; the test needs it refused")
	}
	st, refused, ok := HoldBack(c, picked, visible, resolveFor(c))
	if !ok {
		t.Fatal("holding db back on 1.0.0 did not resolve")
	}
	if got := st.ProfileVersion("web") + " " + st.ProfileVersion("db"); got != "1.1.0 1.0.0" {
		t.Errorf("web and db resolved to %s, want web moved on (1.1.0) and db held (1.0.0)", got)
	}
	if len(refused) != 1 || refused["db"].Version != "1.1.0" || !strings.Contains(refused["db"].Reason, "size") {
		t.Errorf("refused %+v, want db 1.1.0 naming the variable", refused)
	}

	// A version named exactly is the user's choice: not held back.
	c = cluster("1.x")
	c.Spec.Profiles[1].Version = "1.1.0"
	if _, _, ok := HoldBack(c, picked, visible, resolveFor(c)); ok {
		t.Error("a cluster naming db 1.1.0 exactly was held back on 1.0.0; want its error to stand")
	}

	// A cluster that runs nothing yet has nothing to hold on to.
	c = cluster("1.x")
	c.Status.Profiles = nil
	if _, _, ok := HoldBack(c, picked, visible, resolveFor(c)); ok {
		t.Error("a cluster running nothing was held back")
	}

	// When the running versions fail too, the cluster's own spec breaks.
	c = cluster("1.x")
	c.Spec.Overrides = []v1.LayerOverride{{Layer: "nope", Values: "a: 1"}}
	if _, _, ok := HoldBack(c, picked, visible, resolveFor(c)); ok {
		t.Error("a cluster whose own override breaks every version was held back")
	}
}
