package values

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/yaml"
)

// Diff is a unified diff of two value trees as YAML, the sides named
// fromName and toName; "" when they hold the same values.
func Diff(from, to map[string]any, fromName, toName string) string {
	// Most plans change no values: JSON, which prints numbers of any type
	// alike, tells so for less than the YAML the diff is made of.
	if len(from) == 0 && len(to) == 0 || reflect.DeepEqual(from, to) {
		return ""
	}
	if ja, err := json.Marshal(from); err == nil {
		if jb, err := json.Marshal(to); err == nil && bytes.Equal(ja, jb) {
			return ""
		}
	}
	a, b := valuesText(from), valuesText(to)
	if a == b {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: fromName, ToFile: toName, Context: 2,
	})
	if err != nil {
		return ""
	}
	return d
}

func valuesText(v map[string]any) string {
	if len(v) == 0 {
		return ""
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
