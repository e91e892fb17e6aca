package engine

import (
	"io"
	"net/http"
)

// largestWrite is the most of a request's body handed to the transport at
// once: HTTP/2's default frame size.
const largestWrite = 16 << 10

// smallWrites hands the transport a request's body in reads of at most
// largestWrite bytes. The HTTP/2 client sends what one read gave it as one
// frame, up to the server's limit (256 KiB for a kube-apiserver), and its
// framer keeps a write buffer as large as the largest frame for as long as
// the connection lasts: one apply of a large CRD would otherwise pin that
// much for every cluster.
func smallWrites(next http.RoundTripper) http.RoundTripper {
	return smallWritesTransport{next}
}

type smallWritesTransport struct{ next http.RoundTripper }

func (t smallWritesTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || (req.ContentLength > 0 && req.ContentLength <= largestWrite) {
		return t.next.RoundTrip(req)
	}
	// A transport must not change the request it was given.
	small := *req
	small.Body = smallReads{req.Body}
	return t.next.RoundTrip(&small)
}

type smallReads struct{ io.ReadCloser }

func (r smallReads) Read(p []byte) (int, error) {
	return r.ReadCloser.Read(p[:min(len(p), largestWrite)])
}
