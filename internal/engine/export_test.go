package engine

import "sort"

// CheckedObjects lists the objects the engine remembers as found applied.
func CheckedObjects(e *Engine) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]string, 0, len(e.checked))
	for k := range e.checked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
