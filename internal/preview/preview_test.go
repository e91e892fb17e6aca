package preview_test

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/preview"
	"strata.dev/strata/internal/profile"
	"strata.dev/strata/internal/stack"
)

func addon(version string, draft bool, layers ...v1.Layer) *v1.ClusterProfile {
	return &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "apps-" + version}, Spec: v1.ClusterProfileSpec{
		Name: "apps", Version: version, Type: v1.ProfileAddOn, Draft: draft, Layers: layers,
	}}
}

func packLayer(name, pack, version string) v1.Layer {
	return v1.Layer{Name: name, Kind: v1.LayerAddon, Pack: &v1.PackSource{Name: pack, Version: version}}
}

func fleet(t testing.TB, n int, profiles ...*v1.ClusterProfile) preview.Fleet {
	catalog, err := pack.LoadCatalog("../../../shared/testdata/pack-central", "../../packs")
	if err != nil {
		t.Fatal(err)
	}
	var visible []profile.Profile
	for _, p := range profiles {
		visible = append(visible, profile.Profile{ClusterProfile: p})
	}
	f := preview.Fleet{
		Profiles: func(profile.Cluster) []profile.Profile { return visible },
		Packs:    func(profile.Cluster) stack.Packs { return catalog },
		Facts:    func(profile.Cluster) stack.Facts { return stack.Facts{KubernetesVersion: "1.37.2"} },
	}
	for i := range n {
		c := &v1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "edge", Name: fmt.Sprintf("store-%04d", i)},
			Spec: v1.ClusterSpec{Profiles: []v1.ProfileAttachment{{Name: "apps", Version: "1.x"}}}}
		f.Clusters = append(f.Clusters, profile.Cluster{Cluster: c})
	}
	return f
}

// Each action is told apart: a pack swapped in a layer, one upgraded, one
// removed, one added, one left as it is.
func TestLayerActions(t *testing.T) {
	old := addon("1.0.0", false, packLayer("mirror", "spegel", "0.0.18"), packLayer("watch", "kubewatch", "1.0.7"),
		packLayer("hello", "hello-universe", "1.2.0"), packLayer("gone", "kubevious", "1.0.10"))
	draft := addon("1.1.0", true, packLayer("mirror", "spegel", "0.0.30"), packLayer("watch", "permission-manager", "1.0.0"),
		packLayer("hello", "hello-universe", "1.2.0"), packLayer("new", "argo-rollouts", "1.2.1"))
	impact := preview.Compute(draft, fleet(t, 1, old, draft))
	if len(impact.Clusters) != 1 || impact.Clusters[0].Refused != "" {
		t.Fatalf("impact %+v", impact)
	}
	got := map[string]string{}
	for _, l := range impact.Clusters[0].Layers {
		got[l.Name] = l.Action
	}
	want := map[string]string{"mirror": preview.Upgrade, "watch": preview.Swap, "hello": preview.Unchanged, "gone": preview.Remove, "new": preview.Install}
	for name, action := range want {
		if got[name] != action {
			t.Errorf("layer %s: %s, want %s (all: %v)", name, got[name], action, got)
		}
	}
	if impact.Summary != (preview.Summary{Change: 1}) {
		t.Errorf("summary %+v", impact.Summary)
	}
}

// BenchmarkImpact previews a draft on 1, 100 and 1,000 clusters (two
// resolutions of a 3-layer stack each, real packs).
func BenchmarkImpact(b *testing.B) {
	old := addon("1.0.0", false, packLayer("mirror", "spegel", "0.0.18"), packLayer("hello", "hello-universe", "1.2.0"), packLayer("watch", "kubewatch", "1.0.7"))
	draft := addon("1.1.0", true, packLayer("mirror", "spegel", "0.0.30"), packLayer("hello", "hello-universe", "1.2.0"))
	for _, n := range []int{1, 100, 1000} {
		f := fleet(b, n, old, draft)
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			for b.Loop() {
				if im := preview.Compute(draft, f); im.Summary.Change != n {
					b.Fatalf("summary %+v", im.Summary)
				}
			}
		})
	}
}

// A local cluster whose node pool is too small for what the draft adds
// refuses it, naming the pool and the layer; one with room takes it.
func TestANodePoolTooSmallRefuses(t *testing.T) {
	infra := &v1.ClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "base-1.0.0"}, Spec: v1.ClusterProfileSpec{
		Name: "base", Version: "1.0.0", Type: v1.ProfileInfra, Layers: []v1.Layer{
			{Name: "os", Kind: v1.LayerOS, Pack: &v1.PackSource{Name: "ubuntu", Version: "24.04"}},
			{Name: "kubernetes", Kind: v1.LayerK8s, Pack: &v1.PackSource{Name: "kubernetes", Version: "1.37.2"}},
			{Name: "cni", Kind: v1.LayerCNI, Pack: &v1.PackSource{Name: "antrea", Version: "1.9.0"}},
			{Name: "csi", Kind: v1.LayerCSI, Pack: &v1.PackSource{Name: "csi-nfs-subdir-external", Version: "4.0.13"}},
		},
	}}
	old := addon("1.0.0", false, packLayer("hello", "hello-universe", "1.2.0"))
	draft := addon("1.1.0", true, packLayer("hello", "hello-universe", "1.2.0"), packLayer("inventory", "kubevious", "1.0.10"))
	f := fleet(t, 2, infra, old, draft)
	tiny := resource.MustParse("100m")
	for i, c := range f.Clusters {
		c.Spec.Provider = v1.ProviderLocal
		c.Spec.Profiles = append([]v1.ProfileAttachment{{Name: "base", Version: "1.0.0"}}, c.Spec.Profiles...)
		c.Spec.NodePools = []v1.NodePool{{Name: "workers", Count: 1}}
		if i == 0 {
			c.Spec.NodePools[0].CPU = &tiny
		}
	}
	impact := preview.Compute(draft, f)
	if impact.Summary.Refused != 1 || impact.Summary.Change != 1 {
		t.Fatalf("summary %+v, want 1 refused (the tiny pool) and 1 change: %+v", impact.Summary, impact.Clusters)
	}
	if r := impact.Clusters[0].Refused; !strings.Contains(r, `pool "workers" is too small for layer "inventory"`) {
		t.Errorf("store-0000 refused %q, want the pool and the layer named", r)
	}
}
