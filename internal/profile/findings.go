package profile

import (
	"fmt"
	"strings"
)

// Finding is one rule a profile or cluster breaks: where (file, object,
// field path) and what was expected.
type Finding struct {
	Source  Source `json:"source"`
	Object  string `json:"object"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (f Finding) Error() string {
	var b strings.Builder
	if f.Source.File != "" {
		b.WriteString(f.Source.String() + ": ")
	}
	b.WriteString(f.Object)
	if f.Field != "" {
		b.WriteString(": " + f.Field)
	}
	b.WriteString(": " + f.Message)
	return b.String()
}

// Findings collects every rule broken, so users fix them in one go.
type Findings []Finding

// Add records a finding.
func (fs *Findings) Add(src Source, object, field, format string, args ...any) {
	*fs = append(*fs, Finding{Source: src, Object: object, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err is nil when there are no findings, else an error listing them.
func (fs Findings) Err() error {
	if len(fs) == 0 {
		return nil
	}
	return InvalidError{Findings: fs}
}

// InvalidError lists every finding, one per line.
type InvalidError struct {
	Findings Findings
}

func (e InvalidError) Error() string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		lines[i] = f.Error()
	}
	return strings.Join(lines, "\n")
}

// ProfileObject names a profile in messages: profile "web" 1.2.0.
func ProfileObject(name, version string) string {
	return fmt.Sprintf("profile %q %s", name, version)
}

// ClusterObject names a cluster in messages.
func ClusterObject(name string) string {
	return fmt.Sprintf("cluster %q", name)
}
