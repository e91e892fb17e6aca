package pack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"strata.dev/strata/internal/pack"
)

// accepted holds Strata's own fixture packs, one per pattern seen in packs
// that Palette publishes and its pack schema accepts: each must load with
// warnings at most.
const accepted = "testdata/accepted"

func TestPackPatternsPaletteAcceptsAreWarningsNotErrors(t *testing.T) {
	cases := []struct {
		dir, file, field, warning string
		check                     func(t *testing.T, p *pack.Pack)
	}{
		{dir: "upgrade-dependency", check: func(t *testing.T, p *pack.Pack) {
			d := p.Constraints.Dependencies
			if len(d) != 1 || d[0].Type != pack.DependencyUpgrade || d[0].MinVersion != "1.2.0" {
				t.Errorf("dependencies = %+v, want one upgrade dependency on hello-universe >= 1.2.0", d)
			}
			r := p.Constraints.Resources
			if len(r) != 3 || r[0].Type != pack.ResourceCPU || r[0].MinLimit != 2000 || r[2].Type != pack.ResourceDiskSize || r[2].MinLimit != 20 {
				t.Errorf("resources = %+v, want cpu 2000, memory 4096, diskSize 20", r)
			}
		}},
		{dir: "kernel-layer", check: func(t *testing.T, p *pack.Pack) {
			if p.Layer != pack.LayerKernel {
				t.Errorf("layer %q, want kernel", p.Layer)
			}
		}},
		{dir: "empty-enabled-presets", check: func(t *testing.T, p *pack.Pack) {
			if len(p.EnabledPresets) != 0 {
				t.Errorf("enabled presets %v: an empty comment enables none", p.EnabledPresets)
			}
			if p.Settings.Namespace != "quiet" {
				t.Errorf("namespace %q: the line after the comment is the pack section, want quiet", p.Settings.Namespace)
			}
		}},
		{dir: "foreign-enabled-presets", file: "values.yaml", field: "# spectrocloud.com/enabled-presets", warning: "unknown preset Backend:turbo: presets.yaml defines Backend:slow; ignored",
			check: func(t *testing.T, p *pack.Pack) {
				if len(p.EnabledPresets) != 0 {
					t.Errorf("enabled presets %v: a preset the pack lacks selects nothing", p.EnabledPresets)
				}
			}},
		{dir: "empty-namespace", check: func(t *testing.T, p *pack.Pack) {
			if p.Settings.Namespace != "" || p.Settings.InstallPriority != 5 {
				t.Errorf("settings %+v: want no namespace and priority 5", p.Settings)
			}
		}},
		{dir: "unknown-format", file: "schema.yaml", field: "manifests.form-app.greeting.schema", warning: "unknown type ${input}",
			check: func(t *testing.T, p *pack.Pack) {
				c, ok := p.SchemaFor("manifests.form-app.greeting")
				if !ok || !c.Required || c.Hints != "free text" {
					t.Errorf("greeting rule %+v: want it kept, required, with its hint", c)
				}
				if c, ok := p.SchemaFor("manifests.form-app.peers.$[]"); !ok || c.Hints != "peer address; one per entry" {
					t.Errorf("peers rule %+v: want both hints", c)
				}
			}},
		{dir: "bad-schema-rules", file: "schema.yaml", field: "manifests.x.name.schema", warning: `unknown function "frmat"`},
		{dir: "bad-schema-rules", file: "schema.yaml", field: "manifests.x.port.schema", warning: "unknown type ${nubmer}"},
		{dir: "self-reference"},
		{dir: "odd-version", file: "pack.json", field: "version", warning: `"1.2.3.4" is not a semantic version`},
	}
	for _, tc := range cases {
		t.Run(tc.dir+"/"+tc.field, func(t *testing.T) {
			p, problems := pack.Load(filepath.Join(accepted, tc.dir))
			if err := problems.Err(); err != nil {
				t.Fatalf("refused a pack Palette accepts:\n%v", err)
			}
			if tc.warning != "" && !hasProblem(problems.Warnings(), tc.file, tc.field, tc.warning) {
				t.Errorf("want a warning in %s at %q containing %q; got:\n%v", tc.file, tc.field, tc.warning, problems)
			}
			if len(p.Warnings) != len(problems.Warnings()) {
				t.Errorf("pack carries %d warnings, Load reported %d", len(p.Warnings), len(problems.Warnings()))
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func hasProblem(ps pack.Problems, file, field, msg string) bool {
	for _, p := range ps {
		if filepath.Base(p.File) == file && p.Field == field && strings.Contains(p.Message, msg) {
			return true
		}
	}
	return false
}

// packSchema is the JSON schema Palette's pack repository checks every
// pack.json with.
const packSchema = "../../../shared/testdata/pack-schema/pack-schema.json"

// Every pack.json the upstream schema accepts — the real packs and every
// fixture here — is never refused for a pack.json reason (its metadata); a
// pack.json the schema refuses gets at least a warning from Strata, which
// may be more lenient (a missing displayName does not stop a deploy).
func TestWhatThePackSchemaAcceptsStrataAccepts(t *testing.T) {
	schema, err := jsonschema.NewCompiler().Compile(packSchema)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pattern := range []string{packCentral + "/*/pack.json", "testdata/*/*/pack.json"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 25 {
		t.Fatalf("found %d pack.json files, want the 13 real ones and the fixtures", len(files))
	}
	acceptedCount := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		schemaErr := json.Unmarshal(data, &doc)
		if schemaErr == nil {
			schemaErr = schema.Validate(doc)
		}
		_, problems := pack.Load(filepath.Dir(file))
		var refusals, notes []pack.Problem
		for _, p := range problems {
			if filepath.Base(p.File) == pack.MetadataFile {
				notes = append(notes, p)
			}
		}
		for _, p := range problems.Errors() {
			// Errors about the charts and manifests pack.json lists are about
			// the pack's content, not its metadata.
			if filepath.Base(p.File) == pack.MetadataFile && !strings.HasPrefix(p.Field, "charts[") && !strings.HasPrefix(p.Field, "kubeManifests[") {
				refusals = append(refusals, p)
			}
		}
		switch {
		case schemaErr == nil && len(refusals) > 0:
			t.Errorf("%s: the pack schema accepts it, Strata refuses it: %v", file, refusals)
		case schemaErr != nil && len(notes) == 0:
			t.Errorf("%s: the pack schema refuses it (%v), Strata reads it without a word", file, schemaErr)
		}
		if schemaErr == nil {
			acceptedCount++
		}
	}
	if acceptedCount < 20 {
		t.Errorf("the schema accepts only %d of %d pack.json files: want the real packs and the accepted fixtures among them", acceptedCount, len(files))
	}
}
