package process

import (
	"testing"
	"time"

	"github.com/annals/annals"
)

// TestLeaseWatch: a waiter takes a lease released or never taken at
// once, and one held only once the stream has stood still for the
// holder's time to live by the waiter's clock, counted from the first
// time it saw that revision.
func TestLeaseWatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	held := leaseRecord{Holder: "a", TTLMilli: 1000}
	steps := []struct {
		next     annals.ExpectedRevision
		rec      leaseRecord
		found    bool
		at       time.Duration
		wantFree bool
	}{
		{annals.NoStream, leaseRecord{}, false, 0, true},
		{annals.Exact(0), held, true, 0, false},                                                          // first seen: count from here
		{annals.Exact(0), held, true, 999 * time.Millisecond, false},                                     // not yet its time to live
		{annals.Exact(1), held, true, 1500 * time.Millisecond, false},                                    // renewed: count again
		{annals.Exact(1), held, true, 2499 * time.Millisecond, false},                                    //
		{annals.Exact(1), held, true, 2500 * time.Millisecond, true},                                     // stood still for 1 s
		{annals.Exact(2), leaseRecord{Holder: "a", Released: true}, true, 2600 * time.Millisecond, true}, // released
	}
	var w leaseWatch
	for i, s := range steps {
		if got := w.free(s.next, s.rec, s.found, t0.Add(s.at)); got != s.wantFree {
			t.Errorf("step %d: free %v, want %v", i, got, s.wantFree)
		}
	}
}
