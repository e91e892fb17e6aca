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

// Refused again and again, an agent waits what the server asks (1 s here)
// and a random part of a window that doubles with each refusal — 1, 2, 4 …
// seconds and at most 32 — the fraction of a second here and the rest as a
// longer Retry-After; an answer resets it.
func TestBackoffOn429GrowsWithJitter(t *testing.T) {
	next := answers{429, 429, 429, 429, 429, 429, 429, 200, 429}
	var paused []time.Duration
	b := &backoffOn429{next: &next, pause: func(_ context.Context, d time.Duration) { paused = append(paused, d) }}
	windows := []int{1, 2, 4, 8, 16, 32, 32, -1, 1}
	for i, window := range windows {
		code, retryAfter := roundTrip(t, b)
		if window < 0 {
			if code != http.StatusOK {
				t.Fatalf("answer %d: %d", i, code)
			}
			continue
		}
		if p := paused[len(paused)-1]; p < 0 || p >= time.Second {
			t.Errorf("refusal %d: paused %s here, want the fraction of a second only", i+1, p)
		}
		got, err := strconv.Atoi(retryAfter)
		if err != nil || got < 1 || got > 1+window {
			t.Errorf("refusal %d: Retry-After %q, want 1 to %d s", i+1, retryAfter, 1+window)
		}
	}
}

// Agents refused as many times in a row spread over the whole window, short
// waits as likely as long ones, instead of coming back together.
func TestBackoffOn429SpreadsOverTheWindow(t *testing.T) {
	var short, long int
	for range 200 {
		next := answers{429, 429, 429, 429, 429, 429}
		b := &backoffOn429{next: &next, pause: func(context.Context, time.Duration) {}}
		var retryAfter string
		for range 6 {
			_, retryAfter = roundTrip(t, b)
		}
		// The sixth refusal in a row: 1 s asked, and up to 32 s more.
		switch got, _ := strconv.Atoi(retryAfter); {
		case got < 9:
			short++
		case got > 25:
			long++
		}
	}
	if short == 0 || long == 0 {
		t.Errorf("of 200 agents refused six times, %d waited under 9 s and %d over 25 s: want waits spread from 1 to 33 s", short, long)
	}
}

// roundTrip is one request through b: the answer's status and Retry-After.
func roundTrip(t *testing.T, b *backoffOn429) (int, string) {
	t.Helper()
	resp, err := b.RoundTrip(httptest.NewRequest(http.MethodGet, "https://plane/apis", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}
