package cli

import (
	"encoding/json"
	"testing"
)

const packCentral = "../../../shared/testdata/pack-central"

func TestPackLintExitCodesAndJSON(t *testing.T) {
	out, code := run(t, "pack", "lint", "-o", "json", packCentral)
	if code != ExitOK {
		t.Fatalf("real packs: exit %d, want 0\n%s", code, out)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 13 {
		t.Errorf("%d entries, want one per real pack (13)", len(entries))
	}
	for _, key := range []string{"path", "name", "version", "layer", "errors", "warnings"} {
		if _, ok := entries[0][key]; !ok {
			t.Errorf("json entry lacks %q: %v", key, entries[0])
		}
	}

	if _, code := run(t, "pack", "lint", "../pack/testdata/broken", packCentral); code != ExitFail {
		t.Errorf("broken packs: exit %d, want 1", code)
	}
	if _, code := run(t, "pack", "lint"); code != ExitUsage {
		t.Errorf("no path: exit %d, want 2", code)
	}
	if _, code := run(t, "pack", "lint", "-o", "yaml", packCentral); code != ExitUsage {
		t.Errorf("bad --output: exit %d, want 2", code)
	}
}
