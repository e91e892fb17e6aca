// Package values merges and copies decoded YAML values (maps of any), the
// way layer values are layered: later sources win, mappings merge key by key.
package values

// Merge merges src into dst: mappings merge key by key, anything else
// in src replaces what dst had. Like Helm's coalescing, but src wins.
func Merge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = Merge(dm, sm)
				continue
			}
			dst[k] = Merge(map[string]any{}, sm)
			continue
		}
		dst[k] = sv
	}
	return dst
}

// DeepCopy copies decoded YAML, so merges never alias their sources.
func DeepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = DeepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = DeepCopy(e)
		}
		return out
	default:
		return v
	}
}
