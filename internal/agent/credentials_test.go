package agent

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// Each agent talks to the management plane over connections of its own,
// as one per machine would, even when agents share a process (the hollow
// agents of a load test); its clients share them; it asks for no
// compression.
func TestEachAgentHasItsOwnConnections(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	var encodings []string
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		encodings = append(encodings, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Success"}`))
	}))
	server.EnableHTTP2 = true
	server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	server.StartTLS()
	defer server.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})

	get := func(c *credentials) {
		t.Helper()
		client, err := rest.HTTPClientFor(c.config())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(server.URL + "/version")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	a := &credentials{server: server.URL, caData: ca, token: "a"}
	b := &credentials{server: server.URL, caData: ca, token: "b"}
	get(a)
	get(a) // a second client of the same agent
	get(b)
	mu.Lock()
	defer mu.Unlock()
	if conns != 2 {
		t.Errorf("two agents, three clients: %d connections; want one per agent", conns)
	}
	for _, e := range encodings {
		if e != "" {
			t.Errorf("an agent asked for Accept-Encoding %q; want no compression", e)
		}
	}
}
