package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

func state[M any](t testing.TB, pr *projection.Projector[M]) projection.Status {
	t.Helper()
	st, err := pr.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPauseResume(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 100, 0)
	target := projection.NewMemory()
	pr, err := projection.New(store, target, kvProjection("pause", nil), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	defer pr.Stop()
	caughtUp(t, pr, 100)
	waitFor(t, "running", func() bool { return state(t, pr).State == projection.Running })

	if err := pr.Pause(); err != nil {
		t.Fatal(err)
	}
	// Caught up, it holds no batch: nothing moves from here. The window
	// below is an absence check: a slow machine can make it miss a fault,
	// never fail a correct projector.
	at := pr.Position()
	appendEvents(t, store, 50, 1)
	time.Sleep(50 * time.Millisecond)
	st := state(t, pr)
	if st.State != projection.Paused || st.Position != at || st.Lag != uint64(150-at) {
		t.Fatalf("paused: %+v, want position %d", st, at)
	}

	pr.Resume()
	caughtUp(t, pr, 150)
	if st := state(t, pr); st.State != projection.Running || st.Lag != 0 || st.EventsPerSecond <= 0 {
		t.Fatalf("resumed: %+v", st)
	}
	sameModel(t, "resumed", dumpMemory(target, "pause"), fold(t, store, nil))
}

func TestResetWhileRunning(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 500, 0)
	target := projection.NewMemory()
	p := kvProjection("reset", nil)
	p.Policy = projection.ErrorPolicy{MaxRetries: -1, OnFailure: projection.Park}
	var bad atomic.Uint64
	bad.Store(10)
	inner := p.Handle
	p.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if e.Position == annals.Position(bad.Load()) {
			return errBoom
		}
		return inner(ctx, kv, e)
	}
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: 16})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	defer pr.Stop()
	caughtUp(t, pr, 500)
	if st := state(t, pr); st.Parked != 1 {
		t.Fatalf("before reset: %+v", st)
	}

	bad.Store(0)
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The reset committed the empty model and checkpoint 0 together.
	if cp, _ := target.Load(context.Background(), "reset"); cp.Position > 500 {
		t.Fatalf("checkpoint %d after reset", cp.Position)
	}
	caughtUp(t, pr, 500)
	waitFor(t, "the rebuild to end", func() bool { return state(t, pr).State == projection.Running })
	st := state(t, pr)
	if st.Parked != 0 || st.Position != 500 {
		t.Fatalf("after rebuild: %+v", st)
	}
	if parked, _ := pr.ParkedEvents(context.Background(), 10); len(parked) != 0 {
		t.Fatalf("parked events survived the reset: %+v", parked)
	}
	sameModel(t, "rebuilt", dumpMemory(target, "reset"), fold(t, store, nil))
}

func TestResetWhileStopped(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 100, 0)
	target := projection.NewMemory()
	pr := runToEnd(t, store, target, kvProjection("reset", nil))
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := dumpMemory(target, "reset"); len(got) != 0 {
		t.Fatalf("model after reset: %v", got)
	}
	if cp, _ := target.Load(context.Background(), "reset"); cp != (projection.Checkpoint{}) {
		t.Fatalf("checkpoint after reset: %+v", cp)
	}
	if st := state(t, pr); st.State != projection.Stopped || st.Position != 0 || st.Lag != 100 {
		t.Fatalf("status after reset: %+v", st)
	}
	runToEnd(t, store, target, kvProjection("reset", nil))
	sameModel(t, "replayed", dumpMemory(target, "reset"), fold(t, store, nil))

	noReset := kvProjection("x", nil)
	noReset.Reset = nil
	pr, _ = projection.New(store, target, noReset, projection.Options{})
	if err := pr.Reset(context.Background()); !errors.Is(err, projection.ErrNoReset) {
		t.Fatalf("Reset without a Reset func = %v", err)
	}
}

func TestRunTwice(t *testing.T) {
	store := newMemoryStore(t)
	pr, err := projection.New(store, projection.NewMemory(), kvProjection("twice", nil), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	defer pr.Stop()
	waitFor(t, "running", func() bool { return state(t, pr).State == projection.Running })
	if err := pr.Run(context.Background()); !errors.Is(err, projection.ErrRunning) {
		t.Fatalf("second Run = %v", err)
	}
}

func TestInvalid(t *testing.T) {
	store := newMemoryStore(t)
	for _, p := range []projection.Projection[projection.KV]{
		{Handle: countKV},
		{Name: "a\x00b", Handle: countKV},
		{Name: "no handler"},
		{Name: "bad filter", Handle: countKV, Filter: &annals.Filter{}},
	} {
		if _, err := projection.New(store, projection.NewMemory(), p, projection.Options{}); err == nil {
			t.Errorf("New(%q) accepted", p.Name)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(projection.Status{Name: "p", State: projection.Rebuilding, Position: 3, Head: 5, Lag: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"p","state":"rebuilding","position":3,"head":5,"lag":2,"eventsPerSecond":0,"parked":0,"generation":0}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

// Projections sharing a KV target have their own key spaces: a reset of
// one deletes nothing of the other's.
func TestSharedTarget(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 100, 0)
	mem := projection.NewMemory()
	peb := openPebble(t)
	for _, target := range []projection.Target[projection.KV]{mem, peb} {
		a := runToEnd(t, store, target, kvProjection("a", nil))
		runToEnd(t, store, target, kvProjection("b", annals.CategoryFilter("cart")))
		if err := a.Reset(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := fold(t, store, annals.CategoryFilter("cart"))
	sameModel(t, "memory b", dumpMemory(mem, "b"), want)
	sameModel(t, "pebble b", dumpPebble(t, peb, "b"), want)
	if len(dumpMemory(mem, "a")) != 0 || len(dumpPebble(t, peb, "a")) != 0 {
		t.Fatal("a's model survived its reset")
	}
}

// After a reset a running projector reports rebuilding until it has
// replayed the history, then running.
func TestRebuildingState(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 100, 0)
	target := projection.NewMemory()
	var gated atomic.Bool
	gate := make(chan struct{})
	p := kvProjection("rebuild", nil)
	p.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if gated.Load() {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return countKV(ctx, kv, e)
	}
	pr, err := projection.New(store, target, p, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	defer pr.Stop()
	caughtUp(t, pr, 100)
	waitFor(t, "running", func() bool { return state(t, pr).State == projection.Running })

	gated.Store(true)
	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := state(t, pr); st.State != projection.Rebuilding || st.Position != 0 || st.Lag != 100 {
		t.Fatalf("after reset: %+v", st)
	}
	close(gate)
	caughtUp(t, pr, 100)
	waitFor(t, "running after the rebuild", func() bool { return state(t, pr).State == projection.Running })
	sameModel(t, "rebuilt", dumpMemory(target, "rebuild"), fold(t, store, nil))
}
