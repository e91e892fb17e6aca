package pack_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/internal/pack"
)

// packCentral holds real packs that other people wrote; they must load as-is.
const packCentral = "../../../shared/testdata/pack-central"

func TestEveryRealPackLoadsWithoutErrors(t *testing.T) {
	paths, err := pack.Discover(packCentral)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 13 {
		t.Fatalf("found %d packs in %s, want the 13 real ones", len(paths), packCentral)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, problems := pack.Load(path)
			if err := problems.Err(); err != nil {
				t.Fatalf("errors:\n%v", err)
			}
			if p.Name == "" || p.Version == "" || p.Layer == "" {
				t.Errorf("incomplete metadata %+v", p.Metadata)
			}
			if len(p.Charts)+len(p.Manifests) == 0 {
				t.Errorf("no charts and no manifests loaded")
			}
		})
	}
}

func TestRealPackDetails(t *testing.T) {
	hello, problems := pack.Load(filepath.Join(packCentral, "hello-universe-1.2.0"))
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	if got := hello.EnabledPresets; len(got) != 1 || got[0].String() != "Backend:disable-api" {
		t.Errorf("enabled presets = %v, want [Backend:disable-api]", got)
	}
	if p, ok := hello.Preset(pack.PresetRef{Group: "Backend", Name: "enable-api"}); !ok || p.AddValues == nil {
		t.Errorf("preset Backend:enable-api missing or its add values unparsed")
	}
	if len(hello.Manifests) != 1 || hello.Manifests[0].Name != "hello-universe" {
		t.Errorf("manifests = %+v, want one named hello-universe", hello.Manifests)
	}
	if c, ok := hello.SchemaFor("manifests.hello-universe.replicas"); !ok || !c.Required || c.Format != "${number}" {
		t.Errorf("replicas constraint = %+v", c)
	}

	spegel, _ := pack.Load(filepath.Join(packCentral, "spegel-0.0.30"))
	if spegel.Settings.Namespace != "spegel-system" || !strings.Contains(spegel.Settings.NamespaceLabels["spegel-system"], "pod-security.kubernetes.io/enforce=privileged") {
		t.Errorf("spegel settings = %+v", spegel.Settings)
	}
	if len(spegel.Charts) != 1 || spegel.Charts[0].Name != "spegel" || spegel.Charts[0].Version == "" {
		t.Errorf("spegel charts = %+v", spegel.Charts)
	}

	akuity, _ := pack.Load(filepath.Join(packCentral, "akuity-agent-0.30.0-5.5.2026"))
	if c, ok := akuity.SchemaFor("charts.akuity-agent.akuityApiKeySecret"); !ok || !c.Secret {
		t.Errorf("akuity api key secret not marked secret: %+v", c)
	}

	chains, _ := pack.Load(filepath.Join(packCentral, "tekton-chains-0.12.0"))
	deps := chains.Constraints.Dependencies
	if len(deps) != 1 || deps[0].PackName != "tekton-operator" || deps[0].Type != pack.DependencyRequired || deps[0].MinVersion != "0.61.0" {
		t.Errorf("tekton-chains dependencies = %+v", deps)
	}

	kubewatch, problems := pack.Load(filepath.Join(packCentral, "kubewatch-1.0.7"))
	if len(problems.Warnings()) == 0 {
		t.Errorf("kubewatch: want a warning about values not under charts.kubewatch")
	}
	if v := pack.ChartValues(kubewatch.Values, "kubewatch", true); v["slack"] == nil {
		t.Errorf("kubewatch chart values lost: %v", v)
	}
}

func TestPlainHelmChartIsAPack(t *testing.T) {
	for _, path := range []string{
		filepath.Join(packCentral, "spegel-0.0.30", "charts", "spegel-0.0.30.tgz"),
		filepath.Join(packCentral, "antrea-1.9.0", "charts", "antrea"),
	} {
		p, problems := pack.Load(path)
		if err := problems.Err(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !p.PlainChart || p.Layer != pack.LayerAddon || len(p.Charts) != 1 {
			t.Errorf("%s: %+v", path, p.Metadata)
		}
		if v := pack.ChartValues(p.Values, p.Charts[0].Name, true); len(v) == 0 {
			t.Errorf("%s: chart defaults not under charts.%s", path, p.Charts[0].Name)
		}
	}
}

func TestBrokenPacksGiveErrorsNotPanics(t *testing.T) {
	cases := []struct {
		dir       string
		file      string
		field     string
		wantInMsg string
	}{
		{"no-pack-json", "no-pack-json", "", "not a pack: no pack.json and no Chart.yaml"},
		{"invalid-json", "pack.json", "", "line 5"},
		{"chart-absent", "pack.json", "charts[0]", "listed in pack.json but absent"},
		{"invalid-values", "values.yaml", "", "invalid YAML"},
		{"unknown-layer", "pack.json", "layer", `unknown layer "database": want one of os, k8s, cni, csi, addon`},
		{"manifest-bad-template", "pack.json", "kubeManifests[0]", "invalid template"},
	}
	for _, tc := range cases {
		t.Run(tc.dir+"/"+tc.field, func(t *testing.T) {
			_, problems := pack.Load(filepath.Join("testdata", "broken", tc.dir))
			for _, p := range problems.Errors() {
				if filepath.Base(p.File) == tc.file && p.Field == tc.field && strings.Contains(p.Message, tc.wantInMsg) {
					return
				}
			}
			t.Errorf("want an error in %s at %q containing %q; got:\n%v", tc.file, tc.field, tc.wantInMsg, problems)
		})
	}
}

func TestDiscoverFindsPacksInAFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pack.Discover(dir); err == nil {
		t.Error("an empty folder: want an error saying no packs were found")
	}
}
