package command

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	r := Retry{MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}.withDefaults()
	for n := 1; n <= 40; n++ {
		c := min(20*time.Millisecond, 2*time.Millisecond<<min(n-1, 20))
		for range 100 {
			if d := r.backoff(n); d < c/2 || d > c {
				t.Fatalf("retry %d: waited %v, want %v to %v", n, d, c/2, c)
			}
		}
	}
	// Jitter: two waits of one retry differ.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[r.backoff(5)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("%d distinct waits in 50: no jitter", len(seen))
	}
}

func TestRetryDefaults(t *testing.T) {
	r := Retry{}.withDefaults()
	if r.MaxAttempts != DefaultMaxAttempts || r.MinBackoff != DefaultMinBackoff || r.MaxBackoff != DefaultMaxBackoff {
		t.Fatalf("defaults: %+v", r)
	}
	r = Retry{MaxAttempts: MaxAttemptsLimit + 1, MaxBackoff: time.Hour}.withDefaults()
	if r.MaxAttempts != MaxAttemptsLimit || r.MaxBackoff != MaxBackoffLimit {
		t.Fatalf("limits: %+v", r)
	}
}
