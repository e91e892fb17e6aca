package pack

import (
	"fmt"
	"strings"
)

// Severity tells whether a problem makes a pack unusable.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem is one finding about a pack: which file, which field, what is
// wrong and what was expected.
type Problem struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Field    string   `json:"field,omitempty"`
	Message  string   `json:"message"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s: %s", p.File, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Field, p.Message)
}

// Problems collects findings while a pack is read.
type Problems []Problem

func (ps *Problems) errorf(file, field, format string, args ...any) {
	*ps = append(*ps, Problem{Severity: Error, File: file, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps *Problems) warnf(file, field, format string, args ...any) {
	*ps = append(*ps, Problem{Severity: Warning, File: file, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Errors returns the problems of severity Error.
func (ps Problems) Errors() Problems { return ps.only(Error) }

// Warnings returns the problems of severity Warning.
func (ps Problems) Warnings() Problems { return ps.only(Warning) }

func (ps Problems) only(s Severity) Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// Err returns nil when there is no error, otherwise an error listing them.
func (ps Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	return InvalidPackError{Problems: errs}
}

// InvalidPackError reports every error found in a pack.
type InvalidPackError struct {
	Problems Problems
}

func (e InvalidPackError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
