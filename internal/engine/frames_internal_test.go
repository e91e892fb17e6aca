package engine

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// A large body reaches an HTTP/2 server whole, handed to the transport in
// reads no larger than a frame.
func TestLargeBodiesAreWrittenInSmallFrames(t *testing.T) {
	body := make([]byte, 300<<10)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil || r.ProtoMajor != 2 || !bytes.Equal(got, body) {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	var mu sync.Mutex
	var largest int
	reads := func(next http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if req.Body != nil {
				req.Body = readSizes{ReadCloser: req.Body, saw: func(n int) {
					mu.Lock()
					largest = max(largest, n)
					mu.Unlock()
				}}
			}
			return next.RoundTrip(req)
		})
	}
	client := &http.Client{Transport: smallWrites(reads(srv.Client().Transport))}
	// The first request may go out before the server said how large its
	// frames may be (16 KiB until then).
	warm, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = warm.Body.Close()
	resp, err := client.Post(srv.URL, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server got %s, want the body whole over HTTP/2", resp.Status)
	}
	if largest == 0 || largest > largestWrite {
		t.Fatalf("largest read of the body: %d bytes, want 1 to %d", largest, largestWrite)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

type readSizes struct {
	io.ReadCloser
	saw func(int)
}

func (r readSizes) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.saw(n)
	return n, err
}
