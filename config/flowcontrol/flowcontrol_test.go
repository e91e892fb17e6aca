package flowcontrol_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"sigs.k8s.io/yaml"

	"strata.dev/strata/config/flowcontrol"
	"strata.dev/strata/internal/render"
)

// objects parses multi-document YAML into objects by kind/name, without
// their labels.
func objects(t *testing.T, docs []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, doc := range bytes.Split(docs, []byte("\n---")) {
		var o map[string]any
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		if o == nil {
			continue
		}
		meta, _ := o["metadata"].(map[string]any)
		delete(meta, "labels")
		out[o["kind"].(string)+"/"+meta["name"].(string)] = o
	}
	return out
}

// The Helm chart installs the very objects `strata up` applies.
func TestTheChartCarriesTheSameFlowControl(t *testing.T) {
	ch, err := loader.Load("../../deploy/strata")
	if err != nil {
		t.Fatal(err)
	}
	caps := common.DefaultCapabilities.Copy()
	kv, err := common.ParseKubeVersion("v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	manifest, err := render.Chart(ch, ch.Values, "strata", "strata-system", caps)
	if err != nil {
		t.Fatal(err)
	}
	chart := objects(t, []byte(manifest))
	want := objects(t, flowcontrol.Manifests)
	if len(want) != 3 {
		t.Fatalf("config/flowcontrol holds %d objects, want a priority level and two flow schemas", len(want))
	}
	for key, o := range want {
		if !reflect.DeepEqual(chart[key], o) {
			got, _ := yaml.Marshal(chart[key])
			exp, _ := yaml.Marshal(o)
			t.Errorf("%s in the chart:\n%s\nin config/flowcontrol:\n%s", key, got, exp)
		}
	}
	for key := range chart {
		if strings.HasPrefix(key, "FlowSchema/") || strings.HasPrefix(key, "PriorityLevelConfiguration/") {
			if _, ok := want[key]; !ok {
				t.Errorf("the chart has %s, config/flowcontrol does not", key)
			}
		}
	}
}
