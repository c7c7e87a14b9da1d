package projection_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

// effects counts, per position, the handler calls that were not replays:
// the side effects a handler would fire. Each event must fire once.
type effects struct {
	mu sync.Mutex
	n  map[annals.Position]int
}

func (f *effects) note(ctx context.Context, e annals.Event) {
	if projection.Replaying(ctx) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[annals.Position]int{}
	}
	f.n[e.Position]++
}

// check fails unless each position in 1..head fired exactly once.
func (f *effects) check(t *testing.T, head annals.Position) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	bad := 0
	for pos := annals.Position(1); pos <= head; pos++ {
		if n := f.n[pos]; n != 1 && bad < 5 {
			t.Errorf("event at %d fired %d times", pos, n)
			bad++
		}
	}
	if len(f.n) != int(head) {
		t.Errorf("%d events fired, want %d", len(f.n), head)
	}
}

// versioned is the tests' counting projection whose Setup writes its
// version into the model, so a query tells which definition built what
// it reads.
func versioned(version string, fx *effects) projection.Projection[projection.KV] {
	return projection.Projection[projection.KV]{
		Name: "counts",
		Setup: func(ctx context.Context, kv projection.KV) error {
			return kv.Set([]byte("version"), []byte(version))
		},
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			fx.note(ctx, e)
			return countKV(ctx, kv, e)
		},
		Reset:  resetKV,
		Policy: projection.ErrorPolicy{Backoff: time.Millisecond},
	}
}

// kvQuery is a committed-state query of a KV target: its version and its
// total count of applied events.
type kvQuery func() (version string, total uint64, err error)

func memoryQuery(m *projection.Memory) kvQuery {
	return func() (string, uint64, error) {
		var version string
		var total uint64
		m.Scan("counts", nil, func(k, v []byte) bool {
			version, total = tally(k, v, version, total)
			return true
		})
		return version, total, nil
	}
}

func pebbleQuery(p *projection.Pebble) kvQuery {
	return func() (string, uint64, error) {
		var version string
		var total uint64
		err := p.Scan("counts", nil, func(k, v []byte) bool {
			version, total = tally(k, v, version, total)
			return true
		})
		return version, total, err
	}
}

func tally(k, v []byte, version string, total uint64) (string, uint64) {
	if string(k) == "version" {
		return string(v), total
	}
	n, _ := parseCount(string(v))
	return version, total + n
}

// Blue/green under load: writers append and queries run throughout a
// rebuild with a new definition (the active one paused for a while, so
// that the new one would overtake it if it could); queries never fail and never see a
// half-built model (the total they count never goes down; the version
// changes once, from 1 to 2); the switched model equals a clean build;
// each event's side effect fires once.
func TestRebuildUnderLoad(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		target := projection.NewMemory()
		rebuildUnderLoad(t, target, memoryQuery(target), func() map[string]string { return dumpMemory(target, "counts") })
	})
	t.Run("pebble", func(t *testing.T) {
		target, err := projection.OpenPebble(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		rebuildUnderLoad(t, target, pebbleQuery(target), func() map[string]string { return dumpPebble(t, target, "counts") })
	})
}

func rebuildUnderLoad(t *testing.T, target projection.Target[projection.KV], query kvQuery, dump func() map[string]string) {
	ctx := context.Background()
	store := newMemoryStore(t)
	appendEvents(t, store, 3000, 0)
	var fx effects
	pr := started(t, store, target, versioned("1", &fx), projection.Options{BatchEvents: 64})
	caughtUp(t, pr, head(t, store))

	load := startLoad(store, 20, time.Millisecond, query)

	pr.Pause()
	if err := pr.RebuildWith(ctx, versioned("2", &fx)); err != nil {
		t.Fatal(err)
	}
	if err := pr.Rebuild(ctx); !errors.Is(err, projection.ErrRebuilding) {
		t.Errorf("a second Rebuild = %v, want ErrRebuilding", err)
	}
	if st := state(t, pr); st.State != projection.Paused || st.Rebuild == nil || st.Rebuild.Generation != 1 {
		t.Errorf("status during the rebuild, paused: %+v", st)
	}
	growWhilePaused(t, store, pr)
	pr.Resume()
	if st := state(t, pr); st.State != projection.Rebuilding && st.Generation == 0 {
		t.Errorf("status during the rebuild: %+v", st)
	}
	switched(t, pr)
	loadAfterSwitch(t, store, load)
	queries, switches, err := load.finish()
	if err != nil {
		t.Fatal(err)
	}
	h := head(t, store)
	caughtUp(t, pr, h)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	st := state(t, pr)
	if st.State != projection.Stopped || st.Generation != 1 || st.LastError != "" {
		t.Errorf("status after: %+v", st)
	}
	if version, _, _ := query(); version != "2" {
		t.Errorf("version %q after the switch, want 2", version)
	}
	if switches != 1 {
		t.Errorf("queries saw %d switches, want 1", switches)
	}
	sameModel(t, "switched model", dump(), fold(t, store, nil))
	fx.check(t, h)
	t.Logf("%d events, %d queries during the rebuild", h, queries)

	// A restart keeps the new generation.
	pr2, err := projection.New(store, target, versioned("2", &fx), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st := state(t, pr2); st.Generation != 1 || st.Position != h {
		t.Errorf("status of a new projector: %+v", st)
	}
}

// load is the writers and the readers of a rebuild under load.
type load struct {
	stop              chan struct{}
	wg                sync.WaitGroup
	err               atomic.Value
	queries, switches atomic.Int64
}

// startLoad appends n events at a time, pausing between appends, and
// queries the model in a loop, until finish. A query must not fail, its
// version must go from 1 to 2 at most once, and the total it counts
// must never go down (a half-built model would show fewer events).
func startLoad(store annals.Store, n int, pause time.Duration, query kvQuery) *load {
	l := &load{stop: make(chan struct{})}
	l.wg.Go(func() {
		for salt := 1; ; salt++ {
			select {
			case <-l.stop:
				return
			default:
			}
			if err := appendSome(store, n, salt); err != nil {
				l.err.CompareAndSwap(nil, err)
				return
			}
			time.Sleep(pause)
		}
	})
	l.wg.Go(func() {
		lastVersion, lastTotal := "1", uint64(0)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			version, total, err := query()
			switch {
			case err != nil:
				l.err.CompareAndSwap(nil, fmt.Errorf("query: %w", err))
				return
			case version != lastVersion && !(lastVersion == "1" && version == "2"):
				l.err.CompareAndSwap(nil, errors.New("version went from "+lastVersion+" to "+version))
				return
			case total < lastTotal:
				l.err.CompareAndSwap(nil, errors.New("a query saw fewer events than the one before: a half-built model"))
				return
			}
			if version != lastVersion {
				l.switches.Add(1)
			}
			lastVersion, lastTotal = version, total
			l.queries.Add(1)
		}
	})
	return l
}

// finish stops the load and returns how many queries ran, how many saw
// the switch, and the first error.
func (l *load) finish() (queries, switches int64, err error) {
	close(l.stop)
	l.wg.Wait()
	err, _ = l.err.Load().(error)
	return l.queries.Load(), l.switches.Load(), err
}

// A rebuild whose builder fails is given up: the active generation goes
// on untouched, the failed one is dropped, the error is in the status.
func TestRebuildGivenUp(t *testing.T) {
	ctx := context.Background()
	store := newMemoryStore(t)
	appendEvents(t, store, 500, 0)
	target := projection.NewMemory()
	var fx effects
	pr := started(t, store, target, versioned("1", &fx), projection.Options{})
	caughtUp(t, pr, head(t, store))

	broken := versioned("2", &fx)
	broken.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if e.Position == 250 {
			return errors.New("version 2 cannot read this event")
		}
		return countKV(ctx, kv, e)
	}
	broken.Policy = projection.ErrorPolicy{MaxRetries: -1}
	if err := pr.RebuildWith(ctx, broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rebuild to be given up", func() bool {
		st := state(t, pr)
		return st.Rebuild == nil && strings.Contains(st.LastError, "rebuild given up")
	})
	appendEvents(t, store, 100, 1)
	caughtUp(t, pr, head(t, store))
	st := state(t, pr)
	if st.Generation != 0 || st.State != projection.Running {
		t.Errorf("status: %+v", st)
	}
	if v, _, _ := memoryQuery(target)(); v != "1" {
		t.Errorf("version %q, want 1", v)
	}
	sameModel(t, "model", dumpMemory(target, "counts"), fold(t, store, nil))
	if got, err := target.Load(ctx, "counts\x011"); err != nil || got != (projection.Checkpoint{}) {
		t.Errorf("the given-up generation's checkpoint: %+v, %v", got, err)
	}
	fx.check(t, head(t, store))

	// Not running: no rebuild.
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pr.Rebuild(ctx); !errors.Is(err, projection.ErrNotRunning) {
		t.Errorf("Rebuild of a stopped projector = %v", err)
	}
}

// After a Reset, the replay of what was applied before runs with
// Replaying(ctx) true; what is new, false.
func TestResetReplaying(t *testing.T) {
	ctx := context.Background()
	store := newMemoryStore(t)
	appendEvents(t, store, 200, 0)
	var fx effects
	pr, err := projection.New(store, projection.NewMemory(), versioned("1", &fx), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(ctx)
	defer pr.Stop()
	caughtUp(t, pr, 200)
	if err := pr.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, store, 50, 1)
	caughtUp(t, pr, 250)
	fx.check(t, 250)
}

// Parked events are applied again once the cause is fixed.
func TestReplayParked(t *testing.T) {
	ctx := context.Background()
	store := newMemoryStore(t)
	appendEvents(t, store, 300, 0)
	target := projection.NewMemory()
	var broken atomic.Bool
	broken.Store(true)
	proj := projection.Projection[projection.KV]{
		Name: "counts",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			if broken.Load() && e.Type == "Removed" {
				return errors.New("cannot handle Removed yet")
			}
			return countKV(ctx, kv, e)
		},
		Policy: projection.ErrorPolicy{MaxRetries: -1, OnFailure: projection.Park},
	}
	pr := started(t, store, target, proj, projection.Options{})
	caughtUp(t, pr, 300)
	parked := state(t, pr).Parked
	if parked != 60 {
		t.Fatalf("%d parked, want 60", parked)
	}
	if n, err := pr.ReplayParked(ctx); n != 0 || err == nil {
		t.Fatalf("ReplayParked while still broken = %d, %v", n, err)
	}
	broken.Store(false)
	n, err := pr.ReplayParked(ctx)
	if err != nil || n != 60 {
		t.Fatalf("ReplayParked = %d, %v", n, err)
	}
	st := state(t, pr)
	if st.Parked != 0 || st.Position != 300 {
		t.Errorf("status after the replay: %+v", st)
	}
	if pe, _ := pr.ParkedEvents(ctx, 0); len(pe) != 0 {
		t.Errorf("%d parked events listed", len(pe))
	}
	sameModel(t, "model", dumpMemory(target, "counts"), fold(t, store, nil))

	// Stopped: the replay runs from the stored checkpoint.
	broken.Store(true)
	appendEvents(t, store, 10, 1)
	caughtUp(t, pr, 310)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	broken.Store(false)
	if n, err := pr.ReplayParked(ctx); err != nil || n != 2 {
		t.Fatalf("ReplayParked when stopped = %d, %v", n, err)
	}
	sameModel(t, "model", dumpMemory(target, "counts"), fold(t, store, nil))
}

// WaitFor returns once the projector has applied an acknowledged append:
// the model then holds it.
func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	store := newMemoryStore(t)
	target := projection.NewMemory()
	var fx effects
	pr := started(t, store, target, versioned("1", &fx), projection.Options{})
	for i := range 50 {
		res, err := store.Append(ctx, "order-1", annals.Any, annals.EventData{Type: "Added", Data: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, hangGuard)
		err = pr.WaitFor(wctx, res.LastPosition)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := target.Get("counts", []byte("s/order-1"))
		if n, _ := parseCount(string(v)); n != uint64(i+1) {
			t.Fatalf("after WaitFor: %d events in the model, want %d", n, i+1)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := pr.WaitFor(wctx, 1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor a position not reached = %v", err)
	}
}

// A rebuild finishes even while the active generation lags behind the
// log: the builder catches up with it, not with the log. The lag is made,
// not raced for: the active generation is paused while the log grows by
// 2000 events, and the builder reaches its position meanwhile. After
// Resume the applier picks between its next batch and the rebuild's
// switch (a select), so the switch comes within a batch or two, long
// before the active generation could apply the 125 batches to the head:
// its handler never sees the head. Had the builder waited for the log, it
// would have switched only once the active generation reached the head.
func TestRebuildBehindTheHead(t *testing.T) {
	ctx := context.Background()
	store := newMemoryStore(t)
	appendEvents(t, store, 500, 0)
	target := projection.NewMemory()
	var fx effects
	old := versioned("1", &fx)
	var lastOld atomic.Uint64 // the last position the old definition handled
	handle := old.Handle
	old.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		lastOld.Store(uint64(e.Position)) // the applier's only: in increasing order
		return handle(ctx, kv, e)
	}
	pr := started(t, store, target, old, projection.Options{BatchEvents: 16})
	caughtUp(t, pr, 500)
	pr.Pause()
	appendEvents(t, store, 2000, 1)
	h := head(t, store)
	if err := pr.RebuildWith(ctx, versioned("2", &fx)); err != nil {
		t.Fatal(err)
	}
	builderAtParent(t, pr)
	pr.Resume()
	switched(t, pr)
	if last := annals.Position(lastOld.Load()); last >= h {
		t.Errorf("the old definition handled up to %d, the head: the rebuild waited for the log", last)
	}
	caughtUp(t, pr, h)
	sameModel(t, "switched model", dumpMemory(target, "counts"), fold(t, store, nil))
	fx.check(t, h)
	t.Logf("switched %d events behind the head", h-annals.Position(lastOld.Load()))
}

// builderAtParent waits until the rebuild's builder has reached the
// active generation's position.
func builderAtParent[M any](t *testing.T, pr *projection.Projector[M]) {
	t.Helper()
	waitFor(t, "the builder at the active generation's position", func() bool {
		st := state(t, pr)
		return st.Rebuild != nil && st.Rebuild.Position == st.Position
	})
}

// growWhilePaused waits until the builder of paused pr waits at its
// position while the load makes the log grow.
func growWhilePaused[M any](t *testing.T, store annals.Store, pr *projection.Projector[M]) {
	t.Helper()
	builderAtParent(t, pr)
	grown := head(t, store)
	waitFor(t, "the log to grow while paused", func() bool { return head(t, store) > grown })
}

// loadAfterSwitch waits until the load has appended and queried after
// the switch (so that queries saw it).
func loadAfterSwitch(t *testing.T, store annals.Store, l *load) {
	t.Helper()
	atSwitch, queried := head(t, store), l.queries.Load()
	waitFor(t, "appends and queries after the switch", func() bool {
		return head(t, store) > atSwitch && l.queries.Load() > queried+10
	})
}

// switched waits until the rebuild has switched to generation 1.
func switched[M any](t *testing.T, pr *projection.Projector[M]) {
	t.Helper()
	waitFor(t, "the switch", func() bool {
		st := state(t, pr)
		return st.Generation == 1 && st.Rebuild == nil
	})
}
