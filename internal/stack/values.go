package stack

import (
	"sort"
	"strconv"
	"strings"
)

// removePath deletes a dotted path, as a preset's `remove` list asks.
func removePath(values map[string]any, path string) {
	keys := strings.Split(path, ".")
	cur := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return
		}
		cur = next
	}
	delete(cur, keys[len(keys)-1])
}

// walkStrings calls fn on every string leaf with its dotted path, letting
// fn replace it.
func walkStrings(v any, path string, fn func(path, s string) string) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			x[k] = walkStrings(x[k], joinPath(path, k), fn)
		}
		return x
	case []any:
		for i := range x {
			x[i] = walkStrings(x[i], path+"["+strconv.Itoa(i)+"]", fn)
		}
		return x
	case string:
		return fn(path, x)
	default:
		return v
	}
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
