package pack

import "testing"

// The parsers meet files written by hand; whatever the bytes, they report
// problems and never panic.
func FuzzParsePackFiles(f *testing.F) {
	f.Add([]byte(`{"name":"a","version":"1.0.0","layer":"addon","constraints":{"dependencies":[{"packName":"b","type":"required","minVersion":"1.0"}]}}`),
		[]byte("# spectrocloud.com/enabled-presets: G:x\npack:\n  namespace: n\n  spectrocloud.com/install-priority: \"5\"\n  namespaceLabels: {n: \"a=b\"}\n"),
		[]byte("presets:\n  - name: x\n    group: G\n    add: |\n      a: 1\n    remove: [b]\n"),
		[]byte("a.b:\n  schema: '{{ required | format \"${number:[1-5]}\" }}'\n"))
	f.Add([]byte(`{`), []byte("pack: [1]"), []byte("presets: {}"), []byte("x: 1"))
	f.Fuzz(func(t *testing.T, meta, values, presets, schema []byte) {
		var ps Problems
		parseMetadata("pack.json", meta, &ps)
		parseValues("values.yaml", values, &ps)
		parsePresets("presets.yaml", presets, &ps)
		for _, c := range parseSchema("schema.yaml", schema, &ps) {
			_ = c.Check("1", true)
		}
		for _, p := range ps {
			if p.File == "" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
	})
}
