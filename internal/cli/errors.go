package cli

import "strings"

// isCobraUsageError recognises the argument errors cobra returns as plain
// strings (unknown command, wrong argument count), which deserve exit code 2.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand flag", "invalid argument"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}
