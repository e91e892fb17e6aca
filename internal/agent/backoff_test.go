package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

type answers []int

func (a *answers) RoundTrip(*http.Request) (*http.Response, error) {
	code := (*a)[0]
	*a = (*a)[1:]
	rec := httptest.NewRecorder()
	if code == http.StatusTooManyRequests {
		rec.Header().Set("Retry-After", "1")
	}
	rec.WriteHeader(code)
	return rec.Result(), nil
}

// Refused again and again, an agent waits longer each time — 1, 2, 4 …
// seconds and at most 32, never less than the server asks — with a random
// part; an answer resets it.
func TestBackoffOn429GrowsWithJitter(t *testing.T) {
	next := answers{429, 429, 429, 429, 429, 429, 429, 200, 429}
	var paused []time.Duration
	b := &backoffOn429{next: &next, pause: func(_ context.Context, d time.Duration) { paused = append(paused, d) }}
	floors := []int{1, 2, 4, 8, 16, 32, 32, -1, 1}
	for i, floor := range floors {
		req := httptest.NewRequest(http.MethodGet, "https://plane/apis", nil)
		resp, err := b.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if floor < 0 {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("answer %d: %d", i, resp.StatusCode)
			}
			continue
		}
		if p := paused[len(paused)-1]; p < 0 || p >= time.Second {
			t.Errorf("refusal %d: paused %s here, want the fraction of a second only", i+1, p)
		}
		got, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || got < floor || got > floor+floor/2 {
			t.Errorf("refusal %d: Retry-After %q, want %d to %d s", i+1, resp.Header.Get("Retry-After"), floor, floor+floor/2)
		}
	}
}
