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

var errBoom = errors.New("boom")

// failingAt returns a handler that fails on the event at position bad
// while fails says so, counting its calls on that event.
func failingAt(bad annals.Position, calls *atomic.Int64, fails func(call int64) bool) func(context.Context, projection.KV, annals.Event) error {
	return func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if e.Position == bad {
			if n := calls.Add(1); fails(n) {
				return errBoom
			}
		}
		return countKV(ctx, kv, e)
	}
}

func always(int64) bool { return true }

func TestPolicyStop(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 300, 0)
	target := projection.NewMemory()
	var calls atomic.Int64
	p := kvProjection("stop", nil)
	p.Handle = failingAt(120, &calls, always)
	p.Policy = projection.ErrorPolicy{MaxRetries: 3, Backoff: time.Millisecond}
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: 50})
	if err != nil {
		t.Fatal(err)
	}
	err = pr.Run(context.Background())
	var failed *projection.FailedError
	var he *projection.HandlerError
	if !errors.As(err, &failed) || !errors.As(err, &he) || !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v, want a *FailedError wrapping a *HandlerError wrapping errBoom", err)
	}
	if he.Position != 120 || failed.Position != 119 || failed.Attempts != 4 {
		t.Fatalf("failed at %d (handler at %d) after %d attempts, want 119, 120, 4", failed.Position, he.Position, failed.Attempts)
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("handler called %d times on the bad event, want 1 + 3 retries", n)
	}
	st, err := pr.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.State != projection.Failed || st.Position != 119 || st.Lag != 181 || st.LastError == "" || st.Parked != 0 {
		t.Fatalf("status %+v", st)
	}
	// The read model holds exactly the events before the bad one.
	sameModel(t, "stopped", dumpMemory(target, "stop"), foldUpTo(t, store, 119))
	if cp, _ := target.Load(context.Background(), "stop"); cp.Position != 119 {
		t.Fatalf("stored checkpoint %d, want 119", cp.Position)
	}
}

func TestPolicyPark(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 300, 0)
	target := projection.NewMemory()
	var calls atomic.Int64
	p := kvProjection("park", nil)
	p.Handle = failingAt(77, &calls, always)
	p.Policy = projection.ErrorPolicy{MaxRetries: 2, Backoff: time.Millisecond, OnFailure: projection.Park}
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: 64})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	caughtUp(t, pr, 300)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("handler called %d times on the bad event, want 1 + 2 retries", n)
	}
	parked, err := pr.ParkedEvents(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Position != 77 || parked[0].Error != errBoom.Error() || parked[0].Attempts != 3 {
		t.Fatalf("parked %+v", parked)
	}
	st, _ := pr.Status(context.Background())
	if st.Parked != 1 || st.State != projection.Stopped || st.LastError == "" || st.Lag != 0 {
		t.Fatalf("status %+v", st)
	}
	// Everything but the parked event is applied.
	want := fold(t, store, nil)
	var e77 annals.Event
	for e := range store.ReadAll(context.Background(), annals.ReadAllOptions{From: 77, Limit: 1}) {
		e77 = e
	}
	n, sum := parseCount(want[e77.Stream])
	want[e77.Stream] = fmtCount(n-1, sum-77)
	sameModel(t, "parked", dumpMemory(target, "park"), want)
}

func TestPolicyTransientFailure(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 200, 0)
	target := projection.NewMemory()
	var calls atomic.Int64
	p := kvProjection("transient", nil)
	p.Handle = failingAt(150, &calls, func(n int64) bool { return n <= 2 })
	p.Policy = projection.ErrorPolicy{MaxRetries: 5, Backoff: time.Millisecond}
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	caughtUp(t, pr, 200)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("handler called %d times on the flaky event, want 3", n)
	}
	sameModel(t, "after retries", dumpMemory(target, "transient"), fold(t, store, nil))
	if st, _ := pr.Status(context.Background()); st.Parked != 0 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

// A failed projection runs again from its checkpoint once the cause is
// gone.
func TestFailedThenRunAgain(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 100, 0)
	target := projection.NewMemory()
	var broken atomic.Bool
	broken.Store(true)
	p := kvProjection("again", nil)
	p.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if e.Position == 60 && broken.Load() {
			return errBoom
		}
		return countKV(ctx, kv, e)
	}
	p.Policy = projection.ErrorPolicy{MaxRetries: -1}
	pr, err := projection.New(store, target, p, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Run(context.Background()); !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v", err)
	}
	broken.Store(false)
	pr.Start(context.Background())
	caughtUp(t, pr, 100)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	sameModel(t, "run again", dumpMemory(target, "again"), fold(t, store, nil))
}

func foldUpTo(t testing.TB, store annals.Store, last annals.Position) map[string]string {
	t.Helper()
	out := map[string]string{}
	for e, err := range store.ReadAll(context.Background(), annals.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position > last {
			break
		}
		n, sum := parseCount(out[e.Stream])
		out[e.Stream] = fmtCount(n+1, sum+uint64(e.Position))
	}
	return out
}

// Parked events and their count survive a reopening of the embedded
// target, and a reset forgets them.
func TestPebbleParked(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 120, 0)
	dir := t.TempDir()
	target, err := projection.OpenPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	p := kvProjection("park", nil)
	p.Handle = failingAt(33, &calls, always)
	p.Policy = projection.ErrorPolicy{MaxRetries: -1, OnFailure: projection.Park}
	runToEnd(t, store, target, p)
	if err := target.Close(); err != nil {
		t.Fatal(err)
	}
	if target, err = projection.OpenPebble(dir); err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if cp, _ := target.Load(context.Background(), "park"); cp != (projection.Checkpoint{Position: 120, Parked: 1}) {
		t.Fatalf("checkpoint %+v", cp)
	}
	pr, err := projection.New(store, target, p, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Before it runs, a projector reports the stored checkpoint.
	if st := state(t, pr); st.State != projection.Stopped || st.Position != 120 || st.Parked != 1 || st.Lag != 0 {
		t.Fatalf("status before running %+v", st)
	}
	parked, err := pr.ParkedEvents(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Position != 33 || parked[0].Attempts != 1 || parked[0].Error != errBoom.Error() {
		t.Fatalf("parked %+v", parked)
	}
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if parked, _ := pr.ParkedEvents(context.Background(), 0); len(parked) != 0 {
		t.Fatalf("parked after reset %+v", parked)
	}
	if got := dumpPebble(t, target, "park"); len(got) != 0 {
		t.Fatalf("model after reset %v", got)
	}
}
