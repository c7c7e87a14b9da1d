package projection

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	var r rate
	t0 := time.Unix(1_000_000, 0)
	r.add(t0, 50)
	r.add(t0.Add(500*time.Millisecond), 50)
	r.add(t0.Add(3*time.Second), 100)
	if got := r.perSecond(t0.Add(3 * time.Second)); got != 200.0/rateWindow {
		t.Fatalf("rate %v, want %v", got, 200.0/rateWindow)
	}
	// The first second leaves the window after rateWindow seconds.
	if got := r.perSecond(t0.Add(rateWindow * time.Second)); got != 100.0/rateWindow {
		t.Fatalf("rate %v after the window moved, want %v", got, 100.0/rateWindow)
	}
	if got := r.perSecond(t0.Add(time.Hour)); got != 0 {
		t.Fatalf("rate %v an hour later", got)
	}
}

func TestBackoff(t *testing.T) {
	p := ErrorPolicy{Backoff: time.Second}.withDefaults()
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: MaxRetryBackoff, 1000: MaxRetryBackoff} {
		if got := p.backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
	if got := (ErrorPolicy{MaxRetries: -1}).withDefaults().MaxRetries; got != 0 {
		t.Errorf("MaxRetries -1 gives %d retries", got)
	}
	if got := (ErrorPolicy{MaxRetries: 1 << 20}).withDefaults().MaxRetries; got != MaxRetriesLimit {
		t.Errorf("MaxRetries clamped to %d", got)
	}
	if got := (Options{BatchEvents: 1 << 30}).withDefaults().BatchEvents; got != MaxBatchEvents {
		t.Errorf("BatchEvents clamped to %d", got)
	}
}
