package render

import (
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
	"strata.dev/strata/internal/signature"
	"strata.dev/strata/internal/stack"
)

// chartWithOptionalCache is a chart whose "cache" subchart is installed
// only when cache.enabled is true, as Helm charts commonly do.
func chartWithOptionalCache() *chartv2.Chart {
	cache := &chartv2.Chart{
		Metadata:  &chartv2.Metadata{APIVersion: "v2", Name: "cache", Version: "1.0.0"},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cache}\n")}},
	}
	web := &chartv2.Chart{
		Metadata: &chartv2.Metadata{APIVersion: "v2", Name: "web", Version: "1.0.0",
			Dependencies: []*chartv2.Dependency{{Name: "cache", Version: "1.0.0", Condition: "cache.enabled"}}},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")}},
		Values:    map[string]any{"cache": map[string]any{"enabled": true}},
	}
	web.AddDependency(cache)
	return web
}

// Helm drops the subcharts a render's values disable from the chart it is
// given. Charts are shared by every cluster and every render: a cluster
// that disables a subchart must not take it from the others.
func TestSubchartsDisabledForOneRenderStayForTheNext(t *testing.T) {
	shared := chartWithOptionalCache()
	fetched := fetcherFunc(func() *chartv2.Chart { return shared })
	render := func(enabled bool) string {
		t.Helper()
		l := stack.Layer{Name: "web", Source: stack.SourceChart, ReleaseName: "web", Namespace: "web",
			Values: map[string]any{"cache": map[string]any{"enabled": enabled}}}
		l.Spec.Chart = &chartSource
		ch, values, err := LayerChart(l, Options{Charts: fetched})
		if err != nil {
			t.Fatal(err)
		}
		out, err := Chart(ch, values, l.ReleaseName, l.Namespace, common.DefaultCapabilities.Copy())
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := render(false); strings.Contains(out, "name: cache") {
		t.Fatalf("cache disabled, yet rendered:\n%s", out)
	}
	if out := render(true); !strings.Contains(out, "name: cache") {
		t.Errorf("cache enabled after another render disabled it, and missing:\n%s", out)
	}
	if n := len(shared.Dependencies()); n != 1 {
		t.Errorf("the shared chart has %d subcharts left, want 1", n)
	}
}

var chartSource = v1.ChartSource{Repository: "oci://registry.example/charts", Name: "web", Version: "1.0.0"}

// fetcherFunc hands out the same chart every time, as a fetcher's cache
// does.
type fetcherFunc func() *chartv2.Chart

func (f fetcherFunc) Fetch(*v1.ChartSource, signature.Verifier) (*chartv2.Chart, error) {
	return f(), nil
}

// A pack of several charts installs each as Helm would install it alone:
// a subchart its values disable is left out.
func TestPackOfChartsKeepsEachChartsConditions(t *testing.T) {
	web := chartWithOptionalCache()
	worker := &chartv2.Chart{
		Metadata:  &chartv2.Metadata{APIVersion: "v2", Name: "worker", Version: "1.0.0"},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: worker}\n")}},
	}
	p := &pack.Pack{Metadata: pack.Metadata{Name: "shop", Version: "1.0.0"}, Charts: []pack.Chart{{Name: "web", Version: "1.0.0", Chart: web}, {Name: "worker", Version: "1.0.0", Chart: worker}}}
	l := stack.Layer{Name: "shop", Source: stack.SourcePack, ReleaseName: "shop", Namespace: "shop", Pack: p,
		Values: map[string]any{"charts": map[string]any{"web": map[string]any{"cache": map[string]any{"enabled": false}}, "worker": map[string]any{}}}}
	ch, values, err := LayerChart(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Chart(ch, values, l.ReleaseName, l.Namespace, common.DefaultCapabilities.Copy())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "name: web") || !strings.Contains(out, "name: worker") {
		t.Errorf("a chart of the pack is missing:\n%s", out)
	}
	if strings.Contains(out, "name: cache") {
		t.Errorf("web's cache is disabled by its values, yet rendered:\n%s", out)
	}
}
