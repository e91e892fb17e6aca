package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
)

func testChart(template string, files ...*common.File) *chartv2.Chart {
	return &chartv2.Chart{
		Metadata:  &chartv2.Metadata{Name: "web", Version: "1.0.0", APIVersion: "v2"},
		Templates: []*common.File{{Name: "templates/a.yaml", Data: []byte(template)}},
		Files:     files,
	}
}

// The key changes with every input rendering reads, and is empty for what
// must be rendered each time.
func TestRenderKey(t *testing.T) {
	caps := common.DefaultCapabilities.Copy()
	base := renderKey(testChart("a: {{ .Values.x }}"), map[string]any{"x": 1}, "web", "shop", caps)
	if base == "" {
		t.Fatal("a plain chart has no key")
	}
	other := caps.Copy()
	other.APIVersions = append(other.APIVersions, "monitoring.coreos.com/v1")
	for name, key := range map[string]string{
		"values":    renderKey(testChart("a: {{ .Values.x }}"), map[string]any{"x": 2}, "web", "shop", caps),
		"template":  renderKey(testChart("b: {{ .Values.x }}"), map[string]any{"x": 1}, "web", "shop", caps),
		"release":   renderKey(testChart("a: {{ .Values.x }}"), map[string]any{"x": 1}, "web2", "shop", caps),
		"namespace": renderKey(testChart("a: {{ .Values.x }}"), map[string]any{"x": 1}, "web", "shop2", caps),
		"file":      renderKey(testChart("a: {{ .Values.x }}", &common.File{Name: "f", Data: []byte("x")}), map[string]any{"x": 1}, "web", "shop", caps),
	} {
		if key == base || key == "" {
			t.Errorf("another %s: key %q, want a different one", name, key)
		}
	}
	if again := renderKey(testChart("a: {{ .Values.x }}"), map[string]any{"x": 1}, "web", "shop", caps); again != base {
		t.Error("the same inputs give another key")
	}
	// The APIs a cluster serves are in the key of charts that may read
	// them, and only theirs.
	for name, ch := range map[string]*chartv2.Chart{
		"APIVersions.Has":            testChart(`{{ if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}a: 1{{ end }}`),
		"the capabilities handed on": testChart(`{{ include "x" .Capabilities }}`),
		"capabilities as YAML":       testChart(`{{ toYaml $.Capabilities }}`),
		"a tpl'd file asking":        testChart(`{{ tpl (.Files.Get "f") . }}`, &common.File{Name: "f", Data: []byte("{{ .Capabilities.APIVersions }}")}),
	} {
		if a, b := renderKey(ch, nil, "web", "shop", caps), renderKey(ch, nil, "web", "shop", other); a == b || a == "" {
			t.Errorf("%s: the same key on clusters serving other APIs", name)
		}
	}
	if a, b := renderKey(testChart(`{{ tpl .Values.t . }}`), map[string]any{"t": "{{ .Capabilities.APIVersions }}"}, "web", "shop", caps),
		renderKey(testChart(`{{ tpl .Values.t . }}`), map[string]any{"t": "{{ .Capabilities.APIVersions }}"}, "web", "shop", other); a == b {
		t.Error("a tpl'd value asking for the APIs: the same key on clusters serving other APIs")
	}
	for name, ch := range map[string]*chartv2.Chart{
		"values only":                   testChart("a: {{ .Values.x }}"),
		"the Kubernetes version":        testChart(`v: {{ .Capabilities.KubeVersion.Version }}`),
		"a CRD schema with apiVersions": testChart("apiVersions: [v1]\nx: {{ .Values.x }}"),
	} {
		if a, b := renderKey(ch, nil, "web", "shop", caps), renderKey(ch, nil, "web", "shop", other); a != b || a == "" {
			t.Errorf("%s: another key on clusters serving other APIs", name)
		}
	}
	for name, ch := range map[string]*chartv2.Chart{
		"random in a template":             testChart(`p: {{ randAlphaNum 8 }}`),
		"a generated CA":                   testChart(`{{ $ca := genCA "x" 365 }}`),
		"lookup":                           testChart(`{{ lookup "v1" "Secret" "a" "b" }}`),
		"random in a tpl'd file":           testChart(`{{ tpl (.Files.Get "f") . }}`, &common.File{Name: "f", Data: []byte("{{ uuidv4 }}")}),
		"the clock after a }} in a string": testChart(`{{ list "}}" now }}`),
		"an action left open":              testChart(`a: {{ now`),
	} {
		if key := renderKey(ch, nil, "web", "shop", caps); key != "" {
			t.Errorf("%s: shared", name)
		}
	}
	if key := renderKey(testChart(`{{ tpl .Values.t . }}`), map[string]any{"t": "{{ now }}"}, "web", "shop", caps); key != "" {
		t.Error("values rendered by tpl that read the clock: shared")
	}
	// Words outside actions are printed as they are: a CRD's "type: date",
	// a value nothing renders as a template.
	for name, key := range map[string]string{
		"a CRD schema":              renderKey(testChart("type: date\nformat: date-time # now\nx: {{ .Values.x }}"), map[string]any{"x": 1}, "web", "shop", caps),
		"a value that is not a tpl": renderKey(testChart("a: {{ .Values.t }}"), map[string]any{"t": "{{ now }}"}, "web", "shop", caps),
	} {
		if key == "" {
			t.Errorf("%s: rendered each time", name)
		}
	}
}

// Concurrent renders of one key compute it once; the cache keeps no more
// than its size.
func TestRenderCacheOnceAndBounded(t *testing.T) {
	c := NewRenderCache(100)
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := c.render("k", func() (rendered, error) { calls.Add(1); return rendered{manifest: "manifest"}, nil })
			if err != nil || r.manifest != "manifest" {
				t.Errorf("%q %v", r.manifest, err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("rendered %d times, want once", calls.Load())
	}
	for i := range 20 {
		_, _ = c.render(fmt.Sprint(i), func() (rendered, error) { return rendered{manifest: "0123456789"}, nil })
	}
	if c.bytes > 100 || len(c.entries) > 10 {
		t.Errorf("%d bytes in %d entries, want at most 100", c.bytes, len(c.entries))
	}
	if _, err := c.render("bad", func() (rendered, error) { return rendered{}, fmt.Errorf("does not render") }); err == nil {
		t.Error("an error was lost")
	}
	if _, ok := c.entries["bad"]; ok {
		t.Error("a failed render was kept")
	}
}
