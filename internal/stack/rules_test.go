package stack_test

import (
	"strings"
	"testing"
)

// Every rule a cluster or profile can break, each with the message a user
// reads: file, object, field path and what was expected.
func TestEveryRuleHasAClearError(t *testing.T) {
	profileOnly := func(body string) string {
		return "apiVersion: strata.dev/v1alpha1\nkind: ClusterProfile\nmetadata: {name: p-1.0.0}\nspec:\n  name: p\n  version: 1.0.0\n" + body
	}
	withApps := func(layers string) string {
		return profileOnly("  type: add-on\n  layers:\n" + layers)
	}
	attach := cluster("  profiles: [{name: infra, version: 1.0.0}, {name: p, version: 1.0.0}]\n")
	helloLayer := "    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}}\n"

	cases := []struct {
		name string
		docs []string
		want string
	}{
		{"infra layers out of order", []string{strings.Replace(infra, "kind: cni", "kind: csi", 1), cluster("  profiles: [{name: infra, version: 1.0.0}]\n")},
			`profile "infra" 1.0.0: spec.layers[2].kind: "csi": want cni (an infra profile starts with os, an optional kernel, k8s, cni, csi in that order)`},
		{"infra profile with an add-on layer", []string{strings.Replace(infra, "    - {name: nfs", helloLayer+"    - {name: nfs", 1), cluster("  profiles: [{name: infra, version: 1.0.0}]\n")},
			`spec.layers[4]: an infra profile has exactly the os, k8s, cni and csi layers`},
		{"add-on profile with a network layer", []string{infra, withApps("    - {name: net, kind: cni, pack: {name: antrea, version: 1.9.0}}\n"), attach},
			`profile "p" 1.0.0: spec.layers[0].kind: "cni" in an add-on profile: want addon only`},
		{"full profile missing storage", []string{profileOnly("  type: full\n  layers:\n    - {name: os, kind: os, pack: {name: ubuntu, version: \"24.04\"}}\n    - {name: k, kind: k8s, pack: {name: kubernetes, version: 1.37.2}}\n    - {name: n, kind: cni, pack: {name: antrea, version: 1.9.0}}\n"), cluster("  profiles: [{name: p, version: 1.0.0}]\n")},
			`full profile has 3 layers: want os, k8s, cni and csi first, missing csi`},
		{"version not strict semver", []string{infra, strings.Replace(strings.Replace(withApps(helloLayer), "version: 1.0.0", "version: \"1.0\"", 1), "p-1.0.0", "p-1.0", 1), cluster("  profiles: [{name: infra, version: 1.0.0}, {name: p, version: \"1.0\"}]\n")},
			`spec.version: "1.0": want a version major.minor.patch`},
		{"metadata.name not name-version", []string{infra, strings.Replace(withApps(helloLayer), "p-1.0.0", "p-latest", 1), attach},
			`metadata.name: "p-latest": want "p-1.0.0"`},
		{"duplicate layer names", []string{infra, withApps(helloLayer + helloLayer), attach},
			`spec.layers[1].name: "web" is also the name of spec.layers[0]`},
		{"two sources", []string{infra, withApps("    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}, chart: {repository: oci://127.0.0.1:5000/charts, name: x, version: 1.0.0}}\n"), attach},
			`spec.layers[0]: has 2 sources: want exactly one of pack, chart, manifests or zarf`},
		{"undefined variable in values", []string{infra, withApps("    - name: web\n      kind: addon\n      pack: {name: hello-universe, version: 1.2.0}\n      values: |\n        manifests: {hello-universe: {namespace: \"{{.spectro.var.ns}}\"}}\n"), attach},
			`spec.layers[0].values: unresolvable macro {{.spectro.var.ns}}: the profile defines no variable "ns"`},
		{"unknown system macro", []string{infra, withApps("    - name: web\n      kind: addon\n      pack: {name: hello-universe, version: 1.2.0}\n      values: |\n        manifests: {hello-universe: {namespace: \"{{.spectro.system.cluster.colour}}\"}}\n"), attach},
			`unknown system macro .spectro.system.cluster.colour`},
		{"pack reference to a pack the cluster lacks", []string{infra, withApps("    - name: web\n      kind: addon\n      pack: {name: hello-universe, version: 1.2.0}\n      values: |\n        manifests: {hello-universe: {namespace: \"{{.spectro.pack.spegel.pack.namespace}}\"}}\n"), attach},
			`no layer of the cluster uses pack "spegel"`},
		{"invalid values YAML", []string{infra, withApps("    - name: web\n      kind: addon\n      pack: {name: hello-universe, version: 1.2.0}\n      values: |\n        manifests:\n          - a\n          b: c\n"), attach},
			`spec.layers[0].values: invalid YAML`},
		{"variable default breaks its format", []string{infra, profileOnly("  type: add-on\n  variables: [{name: ip, format: ipv4, default: \"300.1.1.1\"}]\n  layers:\n" + helloLayer), attach},
			`spec.variables[0].default: "300.1.1.1": want an IPv4 address`},
		{"dropdown default not an option", []string{infra, profileOnly("  type: add-on\n  variables: [{name: size, input: dropdown, options: [{value: s}, {value: m}], default: xl}]\n  layers:\n" + helloLayer), attach},
			`spec.variables[0].default: "xl" is not one of the options ["s" "m"]`},
		{"variable regex does not compile", []string{infra, profileOnly("  type: add-on\n  variables: [{name: v, regex: \"([a-z\"}]\n  layers:\n" + helloLayer), attach},
			`spec.variables[0].regex: does not compile`},
		{"preset not Group:name", []string{infra, withApps("    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}, presets: [enable-api]}\n"), attach},
			`spec.layers[0].presets[0]: "enable-api": want Group:preset-name`},
		{"unknown preset", []string{infra, withApps("    - {name: web, kind: addon, pack: {name: hello-universe, version: 1.2.0}, presets: [\"Backend:turbo\"]}\n"), attach},
			`spec.layers[0].presets[0]: unknown preset Backend:turbo: pack hello-universe-1.2.0 has Backend:disable-api, Backend:enable-api`},
		{"roll-out selector that means nothing", []string{infra, profileOnly("  type: add-on\n  rollout:\n    waves:\n      - {name: canary, selector: {matchExpressions: [{key: ring, operator: Near, values: [a]}]}}\n  layers:\n" + helloLayer), attach},
			`spec.rollout.waves[0].selector: "Near" is not a valid label selector operator`},
		{"roll-out wave after a catch-all wave", []string{infra, profileOnly("  type: add-on\n  rollout:\n    waves: [{name: all}, {name: late, selector: {matchLabels: {ring: late}}}]\n  layers:\n" + helloLayer), attach},
			`spec.rollout.waves[1]: comes after spec.rollout.waves[0], which has no selector and takes every cluster left: this wave stays empty`},
		{"roll-out wave named rest before other waves", []string{infra, profileOnly("  type: add-on\n  rollout:\n    waves: [{name: rest, selector: {matchLabels: {ring: edge}}}, {name: canary, selector: {matchLabels: {ring: canary}}}]\n  layers:\n" + helloLayer), attach},
			`spec.rollout.waves[0].name: "rest" names the last wave, of the clusters no wave takes: make it the last wave or choose another name`},
		{"health check on a layer the profile lacks", []string{infra, profileOnly("  type: add-on\n  rollout:\n    healthChecks: [{name: up, layer: api, object: {apiVersion: apps/v1, kind: Deployment, name: api}}]\n  layers:\n" + helloLayer), attach},
			`spec.rollout.healthChecks[0].layer: "api": want the name of a layer of this profile`},
		{"health check condition that does not compile", []string{infra, profileOnly("  type: add-on\n  rollout:\n    healthChecks: [{name: up, object: {apiVersion: v1, kind: ConfigMap, namespace: a, name: b}, condition: \"self.data.x ==\"}]\n  layers:\n" + helloLayer), attach},
			`spec.rollout.healthChecks[0].condition: "self.data.x ==" does not compile`},
		{"pack not found", []string{infra, withApps("    - {name: web, kind: addon, pack: {name: hello-universe, version: 9.9.9}}\n"), attach},
			`spec.layers[0].pack: pack hello-universe 9.9.9 not found in the pack folders given`},
		{"layer kind differs from the pack's", []string{infra, profileOnly("  type: full\n  layers:\n    - {name: os, kind: os, pack: {name: ubuntu, version: \"24.04\"}}\n    - {name: k, kind: k8s, pack: {name: kubernetes, version: 1.37.2}}\n    - {name: n, kind: cni, pack: {name: csi-nfs-subdir-external, version: 4.0.13}}\n    - {name: s, kind: csi, pack: {name: csi-nfs-subdir-external, version: 4.0.13}}\n"), cluster("  profiles: [{name: p, version: 1.0.0}]\n")},
			`spec.layers[2].kind: "cni", but pack csi-nfs-subdir-external-4.0.13 is a csi pack`},
		{"dependency cycle", []string{infra, withApps("    - {name: a, kind: addon, pack: {name: hello-universe, version: 1.2.0}, dependsOn: [b]}\n    - {name: b, kind: addon, pack: {name: spegel, version: 0.0.30}, dependsOn: [a]}\n"), attach},
			`cluster "c1": dependsOn: dependency cycle among layers a, b`},
		{"depends on an unknown layer", []string{infra, withApps("    - {name: a, kind: addon, pack: {name: hello-universe, version: 1.2.0}, dependsOn: [ghost]}\n"), attach},
			`spec.layers[0].dependsOn[0]: no layer "ghost" in the cluster`},
		{"schema format broken by a cluster value", []string{infra, hello, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 1.0.0}]\n  overrides:\n    - {layer: hello-universe, values: \"manifests: {hello-universe: {port: eighty}}\"}\n")},
			`cluster "c1": layer "hello-universe" value "manifests.hello-universe.port": "eighty" does not match format "${number}"; Enter the cluster port number on which the UI service will listen for incoming traffic. (schema.yaml of pack hello-universe-1.2.0)`},
		{"required schema value empty at cluster level", []string{infra, hello, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 1.0.0}]\n  overrides:\n    - {layer: hello-universe, values: \"manifests: {hello-universe: {namespace: ''}}\"}\n")},
			`layer "hello-universe" value "manifests.hello-universe.namespace": required value is empty`},
		{"read-only schema value changed", []string{infra, operator, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: pipelines, version: 1.0.0}]\n  overrides:\n    - {layer: tekton-operator, values: \"charts: {tekton-operator: {fullnameOverride: mine}}\"}\n")},
			`value "charts.tekton-operator.fullnameOverride": read-only in pack tekton-operator-0.61.0`},
		{"two infrastructure profiles", []string{infra, strings.Replace(strings.Replace(infra, "name: infra-1.0.0", "name: infra2-1.0.0", 1), "name: infra\n", "name: infra2\n", 1), cluster("  profiles: [{name: infra, version: 1.0.0}, {name: infra2, version: 1.0.0}]\n")},
			`spec.profiles: has 2 infra or full profiles [infra infra2]: want exactly one`},
		{"attached profile missing", []string{infra, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 2.0.0}]\n")},
			`spec.profiles[1]: profile "hello": no version 2.0.0 found`},
		{"no version in the range", []string{infra, hello, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 2.x}]\n")},
			`spec.profiles[1]: profile "hello": no version 2.x found; versions given: 1.0.0`},
		{"same layer name in two profiles", []string{infra, withApps("    - {name: antrea, kind: addon, pack: {name: spegel, version: 0.0.30}}\n"), attach},
			`layer "antrea" is in profile "infra" and in profile "p": layer names are unique across a cluster's profiles`},
		{"unknown variable set", []string{infra, hello, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 1.0.0, variables: [{name: colour, value: red}]}]\n")},
			`spec.profiles[1].variables[0].name: profile "hello" defines no variable "colour"`},
		{"variable value breaks its regex", []string{infra, hello, cluster("  profiles: [{name: infra, version: 1.0.0}, {name: hello, version: 1.0.0, variables: [{name: namespace, value: Team_A}]}]\n")},
			`variable "namespace" of profile "hello": "Team_A" does not match regex "[a-z0-9-]+"`},
		{"read-only variable changed", []string{infra, profileOnly("  type: add-on\n  variables: [{name: v, readOnly: true, default: a}]\n  layers:\n" + helloLayer), cluster("  profiles: [{name: infra, version: 1.0.0}, {name: p, version: 1.0.0, variables: [{name: v, value: b}]}]\n")},
			`variable "v" of profile "p" is read-only: want its default`},
		{"required variable without value", []string{infra, profileOnly("  type: add-on\n  variables: [{name: v, required: true}]\n  layers:\n" + helloLayer), attach},
			`spec.profiles[1].variables[name=v]: variable "v" of profile "p": required: want a value`},
		{"override of an unknown layer", []string{infra, cluster("  profiles: [{name: infra, version: 1.0.0}]\n  overrides: [{layer: ghost, values: \"a: 1\"}]\n")},
			`spec.overrides[0].layer: no layer "ghost" in the cluster's profiles: want one of os, kubernetes, antrea, nfs`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := resolveCluster(t, tc.docs...)
			if err == nil {
				t.Fatalf("resolved without error (%d layers); want %q", len(st.Layers), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if !strings.Contains(err.Error(), "fleet.yaml") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}
