package macro

import (
	"fmt"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := Env{
		Vars:   map[string]string{"ns": "hello", "replicas": "3"},
		System: map[string]string{"cluster.name": "edge-1", "kubernetes.version": "1.37.2"},
		PackValue: func(pack, path string) (any, error) {
			if pack == "hello-universe" && path == "manifests.hello-universe.port" {
				return 8080.0, nil
			}
			return nil, fmt.Errorf("pack %s has no value %s", pack, path)
		},
	}
	cases := []struct{ in, want, wantErr string }{
		{"namespace: {{.spectro.var.ns}}", "namespace: hello", ""},
		{"replicas: {{ .spectro.var.replicas }}", "replicas: 3", ""},
		{`v: "v{{ .spectro.system.kubernetes.version | substr 0 4 }}"`, `v: "v1.37"`, ""},
		{"name: {{.spectro.system.cluster.name}}-x", "name: edge-1-x", ""},
		{"port: {{.spectro.pack.hello-universe.manifests.hello-universe.port}}", "port: 8080", ""},
		{"keep: {{ .Release.Name }}", "keep: {{ .Release.Name }}", ""},
		{"bad: {{.spectro.var.nope}}", "", `no variable "nope" is defined`},
		{"bad: {{.spectro.system.cluster.color}}", "", "unknown system macro .spectro.system.cluster.color: want one of cluster.name, kubernetes.version"},
		{"bad: {{.spectro.pack.other.x}}", "", "pack other has no value x"},
	}
	for _, tc := range cases {
		got, err := Expand(tc.in, env)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFind(t *testing.T) {
	refs := Find("a: {{.spectro.var.x}}\nb: {{ .spectro.pack.spegel.charts.spegel.image }}\nc: {{ .spectro.system.cluster.uid | upper }}\nd: {{ .Values.x }}")
	got := make([]string, len(refs))
	for i, r := range refs {
		got[i] = r.String()
	}
	want := []string{"{{.spectro.var.x}}", "{{.spectro.pack.spegel.charts.spegel.image}}", "{{.spectro.system.cluster.uid}}"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Find = %v, want %v", got, want)
	}
}

func TestExpandLeavesCommentsAlone(t *testing.T) {
	in := "# uses {{.spectro.var.missing}}\nx: {{.spectro.var.ns}}\n"
	got, err := Expand(in, Env{Vars: map[string]string{"ns": "a"}})
	if err != nil || got != "# uses {{.spectro.var.missing}}\nx: a\n" {
		t.Errorf("got %q, %v", got, err)
	}
}

// A macro cannot ask sprig for a string or list of any size it likes.
func TestMacrosCannotBuildHugeValues(t *testing.T) {
	env := Env{Vars: map[string]string{"v": "ab"}}
	for _, text := range []string{
		`x: {{ repeat 999999999 .spectro.var.v }}`,
		`x: {{ until 999999999 | len | add .spectro.var.v }}`,
		`x: {{ .spectro.var.v | indent 999999999 }}`,
		`x: {{ randAlphaNum 999999999 | trunc 1 | cat .spectro.var.v }}`,
	} {
		if _, err := Expand(text, env); err == nil || !strings.Contains(err.Error(), "at most 65536") {
			t.Errorf("%s: %v, want a refusal", text, err)
		}
	}
	if got, err := Expand(`x: {{ repeat 3 .spectro.var.v }}`, env); err != nil || got != "x: ababab" {
		t.Errorf("a small repeat: %q %v", got, err)
	}
}
