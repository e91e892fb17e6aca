package stack

import (
	"sort"
	"strconv"
	"strings"
)

// mergeValues merges src into dst: mappings merge key by key, anything else
// in src replaces what dst had. Like Helm's coalescing, but src wins.
func mergeValues(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
			dst[k] = mergeValues(map[string]any{}, sm)
			continue
		}
		dst[k] = sv
	}
	return dst
}

// deepCopy copies decoded YAML so merges never alias a pack's defaults.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

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
