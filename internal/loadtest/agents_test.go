package loadtest

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// A hollow agent's warnings are counted and the last is kept, with its
// agent and attributes; what it logs below a warning is not.
func TestTheLoadTestCountsItsAgentsWarnings(t *testing.T) {
	run := &Run{}
	if got := run.Stops(); got != "" {
		t.Fatalf("before any warning: %q, want nothing", got)
	}
	a := slog.New(&warnings{run: run, agent: "fleet/edge-1"})
	b := slog.New(&warnings{run: run, agent: "fleet/edge-2"}).With("cluster", "fleet/edge-2")
	a.Info("registered")
	a.Warn("the management plane did not answer; asking again", "in", "1s")
	b.Error("Reconciler error", "error", errors.New("the server has received too many requests"))
	if got := run.stops().Warned; got != 2 {
		t.Errorf("warnings counted: %d, want 2 (the info line is not one)", got)
	}
	got := run.Stops()
	want := "agents warned 2 (the last: fleet/edge-2: Reconciler error cluster=fleet/edge-2 error=the server has received too many requests)"
	if got != want {
		t.Errorf("figures:\n got %q\nwant %q", got, want)
	}
	run.stopped.Add(1)
	run.lastStop.Store("fleet/edge-3: cluster fleet/edge-3 not found")
	if got := run.Stops(); !strings.HasSuffix(got, "agents stopped 1 (the last: fleet/edge-3: cluster fleet/edge-3 not found)") {
		t.Errorf("with a stop: %q", got)
	}
}
