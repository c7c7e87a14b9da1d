package projection_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

// HandleBatch gets the events of a transaction at once; when it fails,
// Handle applies them one by one and the error policy deals with the
// failing event alone.
func TestHandleBatch(t *testing.T) {
	ctx := context.Background()
	store := newMemoryStore(t)
	appendEvents(t, store, 1000, 0)
	target := projection.NewMemory()
	var batches, batchEvents, single atomic.Int64
	failing := func(e annals.Event) bool { return e.Position == 500 }
	proj := projection.Projection[projection.KV]{
		Name: "counts",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			single.Add(1)
			if failing(e) {
				return errors.New("cannot handle 500")
			}
			return countKV(ctx, kv, e)
		},
		HandleBatch: func(ctx context.Context, kv projection.KV, events []annals.Event) error {
			batches.Add(1)
			for _, e := range events {
				if failing(e) {
					return errors.New("cannot handle 500")
				}
				if err := countKV(ctx, kv, e); err != nil {
					return err
				}
			}
			batchEvents.Add(int64(len(events)))
			return nil
		},
		Policy: projection.ErrorPolicy{MaxRetries: 1, Backoff: time.Millisecond, OnFailure: projection.Park},
	}
	pr := started(t, store, target, proj, projection.Options{BatchEvents: 100})
	caughtUp(t, pr, 1000)
	want := fold(t, store, nil)
	var e500 annals.Event
	for e := range store.ReadAll(ctx, annals.ReadAllOptions{From: 500, Limit: 1}) {
		e500 = e
	}
	n, sum := parseCount(want[e500.Stream])
	want[e500.Stream] = fmtCount(n-1, sum-500)
	sameModel(t, "model", dumpMemory(target, "counts"), want)
	if st := state(t, pr); st.Parked != 1 {
		t.Errorf("status %+v, want one parked", st)
	}
	// Only the failing transaction went event by event: the events
	// before 500 in it, 500 and its retry.
	if single.Load() > 100+2 || batchEvents.Load() < 1000-100 {
		t.Errorf("%d events through Handle, %d through HandleBatch (%d calls)", single.Load(), batchEvents.Load(), batches.Load())
	}
	t.Logf("%d events through Handle, %d through HandleBatch (%d calls)", single.Load(), batchEvents.Load(), batches.Load())
}
