package console

import (
	"testing"
	"time"
)

// TestLiveRate: a live tail sends at most liveTailEventsPerSecond events a
// second and reports the others with the next one it sends.
func TestLiveRate(t *testing.T) {
	var r liveRate
	start := time.Unix(100, 0)
	for i := range liveTailEventsPerSecond {
		if skipped, ok := r.take(start); !ok || skipped != 0 {
			t.Fatalf("event %d of the first second: ok %v, skipped %d", i, ok, skipped)
		}
	}
	for range 7 {
		if _, ok := r.take(start.Add(500 * time.Millisecond)); ok {
			t.Fatal("an event past the second's bound was let through")
		}
	}
	if skipped, ok := r.take(start.Add(time.Second)); !ok || skipped != 7 {
		t.Errorf("the next second's first event: ok %v, skipped %d, want true and 7", ok, skipped)
	}
	if skipped, ok := r.take(start.Add(time.Second)); !ok || skipped != 0 {
		t.Errorf("then: ok %v, skipped %d, want true and 0", ok, skipped)
	}
}
