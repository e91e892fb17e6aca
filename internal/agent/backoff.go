package agent

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// backoffOn429 wraps an agent's transport to the management plane. When
// the API server's flow control answers 429 (too many requests), client-go
// waits the seconds its Retry-After asks and tries again; ten thousand
// agents refused together would all come back together. Here an agent
// waits what the server asks plus a random part of a window that doubles
// with each refusal in a row — up to 1, 2, 4 … 32 s more — part as a
// longer Retry-After and the fraction of a second here.
//
// The random part spans the whole window ("full jitter"), from nothing
// on: a fleet refused at once spreads evenly over it. A wait of at least
// the window (1 to 1.5 windows, as before) made agents refused the same
// number of times come back in waves: at 10,000 agents the plane sat half
// idle between them while thousands waited.
type backoffOn429 struct {
	next http.RoundTripper

	mu sync.Mutex
	// refused counts 429 answers in a row.
	refused int
	// pause is pause, or a test's record of the pauses.
	pause func(ctx context.Context, d time.Duration)
}

// pause waits d unless ctx ends first.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

const maxBackoffOn429 = 32 * time.Second

func (b *backoffOn429) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	b.mu.Lock()
	if resp.StatusCode != http.StatusTooManyRequests {
		b.refused = 0
		b.mu.Unlock()
		return resp, nil
	}
	b.refused++
	n := b.refused
	b.mu.Unlock()
	asked, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil {
		return resp, nil // no Retry-After: client-go does not retry, nor do we
	}
	window := min(time.Second<<min(n-1, 5), maxBackoffOn429)
	wait := time.Duration(asked)*time.Second + time.Duration(rand.Int64N(int64(window)+1))
	whole := wait.Truncate(time.Second)
	resp.Header.Set("Retry-After", strconv.Itoa(int(whole/time.Second)))
	b.pause(req.Context(), wait-whole)
	return resp, nil
}
