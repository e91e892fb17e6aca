package controller

import (
	"testing"
	"time"
)

func TestBackoffDoublesUpToTheResyncPeriod(t *testing.T) {
	var got []time.Duration
	for n := range 8 {
		got = append(got, backoff(n, 2*time.Minute))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff = %v, want %v", got, want)
		}
	}
	if d := backoff(1000, time.Hour); d != time.Hour {
		t.Fatalf("backoff after many failures = %v, want the limit", d)
	}
}
