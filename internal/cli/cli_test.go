package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"strata.dev/strata/internal/version"
)

func run(t *testing.T, args ...string) (stdout string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(&out, &errOut)
	root.SetArgs(args)
	code = exitCode(root.Execute())
	return out.String(), code
}

func TestVersionPrintsStrataAndKubernetesVersions(t *testing.T) {
	out, code := run(t, "version")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out, "strata "+version.Version) || !strings.Contains(out, "kubernetes "+version.Kubernetes) {
		t.Errorf("output %q lacks the Strata or Kubernetes version", out)
	}

	out, _ = run(t, "version", "-o", "json")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json: %v in %q", err, out)
	}
	if got["kubernetes"] != version.Kubernetes {
		t.Errorf("json kubernetes = %v", got["kubernetes"])
	}
}

func TestUsageMistakesExitWithTwo(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"version", "--bad"}, {"version", "-o", "xml"}, {"version", "extra"}} {
		if _, code := run(t, args...); code != ExitUsage {
			t.Errorf("strata %s: exit %d, want %d", strings.Join(args, " "), code, ExitUsage)
		}
	}
}

// runIn runs the CLI with stdin and returns both outputs.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(&out, &errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	code = exitCode(root.Execute())
	return out.String(), errOut.String(), code
}
