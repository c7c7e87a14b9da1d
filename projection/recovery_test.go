package projection_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

// The ways back from a failed or reset projector, end to end on a real
// store and target: each applies again in the same process, at once,
// without a restart.

// handleTally counts, per position, how often the handler of p ran and with
// what replay flag, so that a test sees an event handled again.
type handleTally struct {
	mu      sync.Mutex
	handled map[annals.Position]int
	replays map[annals.Position]int
}

// wrap makes p's handler count into t.
func (t *handleTally) wrap(p projection.Projection[projection.KV]) projection.Projection[projection.KV] {
	inner := p.Handle
	t.handled, t.replays = map[annals.Position]int{}, map[annals.Position]int{}
	p.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if err := inner(ctx, kv, e); err != nil {
			return err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.handled[e.Position]++
		if projection.Replaying(ctx) {
			t.replays[e.Position]++
		}
		return nil
	}
	return p
}

// atLeast reports whether every position in 1..last was handled n times
// or more. A handler's run may be rolled back, so the count is a floor.
func (t *handleTally) atLeast(last annals.Position, n int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for pos := annals.Position(1); pos <= last; pos++ {
		if t.handled[pos] < n {
			return false
		}
	}
	return true
}

// replayed is how many events were handled as replays.
func (t *handleTally) replayed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.replays)
}

// startedTally starts projection "orders" over n events, its handler
// counted in tl, failing at once on the event at position bad while
// broken holds.
func startedTally(t *testing.T, n int, bad annals.Position, broken *atomic.Bool, tl *handleTally) (annals.Store, *projection.Memory, *projection.Projector[projection.KV]) {
	t.Helper()
	store := newMemoryStore(t)
	appendEvents(t, store, n, 0)
	target := projection.NewMemory()
	pr := started(t, store, target, tl.wrap(breakable("orders", bad, broken)), projection.Options{})
	return store, target, pr
}

// failedTally starts projection "orders" over 60 events, its handler
// counted in tl, waits for it to fail at position 30 and mends the
// handler.
func failedTally(t *testing.T, tl *handleTally) (annals.Store, *projection.Memory, *projection.Projector[projection.KV]) {
	t.Helper()
	var broken atomic.Bool
	broken.Store(true)
	store, target, pr := startedTally(t, 60, 30, &broken, tl)
	waitFor(t, "the projection to fail", func() bool { return state(t, pr).State == projection.Failed })
	broken.Store(false)
	return store, target, pr
}

// A projection failed in the run Start began is resumed by Resume: it
// applies the rest of the log and what is appended after, in the same
// run, and Stop reports no failure.
func TestRecoveryResumeFailedStart(t *testing.T) {
	var tl handleTally
	store, target, pr := failedTally(t, &tl)
	if err := pr.Resume(); err != nil {
		t.Fatalf("Resume of a failed projector: %v", err)
	}
	waitHead(t, store, pr)
	appendEvents(t, store, 20, 1)
	waitHead(t, store, pr)
	if st := state(t, pr); st.State != projection.Running || st.LastError == "" {
		t.Fatalf("after resume: %+v, want running with the failure as LastError", st)
	}
	stoppedSame(t, store, target, pr)
}

// A failed projection that is Reset replays the log from the start at
// once (as replays up to the failure), without Resume or a restart.
func TestRecoveryResetFailed(t *testing.T) {
	var tl handleTally
	store, target, pr := failedTally(t, &tl)
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatalf("Reset of a failed projector: %v", err)
	}
	waitFor(t, "every event before the failure handled twice", func() bool { return tl.atLeast(29, 2) })
	waitHead(t, store, pr)
	if n := tl.replayed(); n < 29 {
		t.Errorf("%d events replayed, want the 29 handled before the reset", n)
	}
	stoppedSame(t, store, target, pr)
}

// A Reset of a running projector replays the whole log at once, in the
// same run.
func TestRecoveryResetRunning(t *testing.T) {
	var broken atomic.Bool
	var tl handleTally
	store, target, pr := startedTally(t, 60, 0, &broken, &tl)
	waitHead(t, store, pr)
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event handled twice", func() bool { return tl.atLeast(head(t, store), 2) })
	waitHead(t, store, pr)
	waitFor(t, "the replay to end", func() bool { return state(t, pr).State == projection.Running })
	sameModel(t, "reset while running", dumpMemory(target, "orders"), fold(t, store, nil))
}

// A Reset of a stopped projector replays the log when the same projector
// runs again.
func TestRecoveryResetStopped(t *testing.T) {
	var broken atomic.Bool
	var tl handleTally
	store, target, pr := startedTally(t, 60, 0, &broken, &tl)
	waitHead(t, store, pr)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event handled twice", func() bool { return tl.atLeast(head(t, store), 2) })
	waitHead(t, store, pr)
	if n := tl.replayed(); n != 60 {
		t.Errorf("%d events replayed, want the 60 handled before the reset", n)
	}
	sameModel(t, "reset while stopped", dumpMemory(target, "orders"), fold(t, store, nil))
}

// stoppedSame stops pr, which must not have failed, and checks its model
// against a clean fold of the log.
func stoppedSame(t *testing.T, store annals.Store, target *projection.Memory, pr *projection.Projector[projection.KV]) {
	t.Helper()
	if err := pr.Stop(); err != nil {
		t.Fatalf("Stop of the run that recovered: %v", err)
	}
	sameModel(t, pr.Name(), dumpMemory(target, pr.Name()), fold(t, store, nil))
}
