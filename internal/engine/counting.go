package engine

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// Requests counts the API requests an engine made, by kind.
type Requests struct {
	Reads   int64 `json:"reads"`
	Writes  int64 `json:"writes"`
	DryRuns int64 `json:"dryRuns"`
}

// Sub returns r - o.
func (r Requests) Sub(o Requests) Requests {
	return Requests{Reads: r.Reads - o.Reads, Writes: r.Writes - o.Writes, DryRuns: r.DryRuns - o.DryRuns}
}

// requestCounter counts every request of the engine's clients: a no-op
// apply must make no write, and this is how that is measured, in tests and
// in the CLI output.
type requestCounter struct {
	reads, writes, dryRuns atomic.Int64
}

// wrap returns a transport that counts into c; each client gets its own.
func (c *requestCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return countingTransport{counter: c, next: next}
}

type countingTransport struct {
	counter *requestCounter
	next    http.RoundTripper
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch RequestKind(req) {
	case "read":
		t.counter.reads.Add(1)
	case "dry-run":
		t.counter.dryRuns.Add(1)
	default:
		t.counter.writes.Add(1)
	}
	return t.next.RoundTrip(req)
}

// RequestKind sorts an API request into "read", "dry-run" or "write".
func RequestKind(req *http.Request) string {
	switch {
	case req.Method == http.MethodGet || req.Method == http.MethodHead:
		return "read"
	case strings.Contains(req.URL.RawQuery, "dryRun="):
		return "dry-run"
	default:
		return "write"
	}
}

func (c *requestCounter) snapshot() Requests {
	return Requests{Reads: c.reads.Load(), Writes: c.writes.Load(), DryRuns: c.dryRuns.Load()}
}
