package projection_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

// restarts is how many times each exactly-once test stops its projector
// mid-stream.
const restarts = 25

// lastMatching is the position of the last event f matches.
func lastMatching(t testing.TB, store annals.Store, f *annals.Filter) annals.Position {
	t.Helper()
	var h annals.Position
	for e, err := range store.ReadAll(context.Background(), annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1, Filter: f}) {
		if err != nil {
			t.Fatal(err)
		}
		h = e.Position
	}
	return h
}

// stopAnywhere runs a projector of p on target and stops it at a random
// moment: after a random number of handled events (the context is
// cancelled from inside the handler, so inside a transaction) or after a
// random short time, whichever comes first.
func stopAnywhere[M any](t *testing.T, rng *rand.Rand, maxWait time.Duration, store annals.Store, target projection.Target[M], p projection.Projection[M]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopAfter := 1 + rng.IntN(400)
	handled := 0
	inner := p.Handle
	p.Handle = func(ctx context.Context, m M, e annals.Event) error {
		handled++
		if handled == stopAfter {
			cancel()
		}
		return inner(ctx, m, e)
	}
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: 1 + rng.IntN(64)})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(rng.Int64N(int64(maxWait)))):
	}
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	cp, err := target.Load(context.Background(), p.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped at %d (head %d)", cp.Position, head(t, store))
}

// exactlyOnce stops and restarts a projection many times (each run lasts
// at most maxWait) while events keep coming, then runs it to the end; the
// caller compares the target's read model with a clean run.
func exactlyOnce[M any](t *testing.T, maxWait time.Duration, store annals.Store, target projection.Target[M], p projection.Projection[M]) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	appendEvents(t, store, 1500, 0)
	for i := range restarts {
		// Writers append while the projector runs, so it stops both
		// while catching up and while live.
		appended := make(chan error, 1)
		go func() { appended <- appendSome(store, 40, i+1) }()
		stopAnywhere(t, rng, maxWait, store, target, p)
		if err := <-appended; err != nil {
			t.Fatal(err)
		}
	}
	runToEnd(t, store, target, p)
}

// runToEnd runs a projector until it has dealt with the last matching
// event, then stops it.
func runToEnd[M any](t *testing.T, store annals.Store, target projection.Target[M], p projection.Projection[M]) *projection.Projector[M] {
	t.Helper()
	pr, err := projection.New(store, target, p, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	caughtUp(t, pr, lastMatching(t, store, p.Filter))
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	return pr
}

func kvProjection(name string, f *annals.Filter) projection.Projection[projection.KV] {
	return projection.Projection[projection.KV]{Name: name, Filter: f, Handle: countKV, Reset: resetKV}
}

func TestExactlyOnceMemory(t *testing.T) {
	for _, f := range []*annals.Filter{nil, annals.CategoryFilter("order")} {
		store := newMemoryStore(t)
		target := projection.NewMemory()
		exactlyOnce(t, 5*time.Millisecond, store, target, kvProjection("counts", f))

		clean := projection.NewMemory()
		runToEnd(t, store, clean, kvProjection("counts", f))
		want := fold(t, store, f)
		sameModel(t, "clean run", dumpMemory(clean, "counts"), want)
		sameModel(t, "after restarts", dumpMemory(target, "counts"), want)
	}
}

func TestExactlyOncePebble(t *testing.T) {
	for _, f := range []*annals.Filter{nil, annals.EventTypePrefixFilter("Removed")} {
		store := newMemoryStore(t)
		dir := t.TempDir()
		target, err := projection.OpenPebble(dir)
		if err != nil {
			t.Fatal(err)
		}
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(uint64(seed), 1))
		appendEvents(t, store, 1500, 0)
		for i := range restarts {
			appended := make(chan error, 1)
			go func() { appended <- appendSome(store, 40, i+1) }()
			stopAnywhere(t, rng, 20*time.Millisecond, store, target, kvProjection("counts", f))
			if err := <-appended; err != nil {
				t.Fatal(err)
			}
			if i%5 == 4 {
				// Close and reopen the database: the checkpoint comes
				// from disk.
				if err := target.Close(); err != nil {
					t.Fatal(err)
				}
				if target, err = projection.OpenPebble(dir); err != nil {
					t.Fatal(err)
				}
			}
		}
		runToEnd(t, store, target, kvProjection("counts", f))

		clean, err := projection.OpenPebble(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		runToEnd(t, store, clean, kvProjection("counts", f))
		want := fold(t, store, f)
		sameModel(t, "clean run", dumpPebble(t, clean, "counts"), want)
		sameModel(t, "after restarts", dumpPebble(t, target, "counts"), want)
		target.Close()
		clean.Close()
	}
}

// noLease hides a target's leases.
type noLease struct {
	projection.Target[projection.KV]
}

// Two projectors of one name on one target never apply an event twice,
// even without the lease that keeps the second waiting: the second
// writer's checkpoint check fails and it resumes from the stored
// checkpoint.
func TestTwoWritersOneCheckpoint(t *testing.T) {
	store := newMemoryStore(t)
	target := projection.NewMemory()
	appendEvents(t, store, 2000, 0)
	var prs []*projection.Projector[projection.KV]
	for range 2 {
		pr, err := projection.New(store, noLease{target}, kvProjection("counts", nil), projection.Options{BatchEvents: 7})
		if err != nil {
			t.Fatal(err)
		}
		pr.Start(context.Background())
		prs = append(prs, pr)
	}
	for _, pr := range prs {
		caughtUp(t, pr, head(t, store))
		if err := pr.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	sameModel(t, "two writers", dumpMemory(target, "counts"), fold(t, store, nil))
}

// In one process, the KV targets keep one projector of a name applying:
// the second waits on standby and takes over when the first stops.
func TestLocalLease(t *testing.T) {
	pebbleTarget, err := projection.OpenPebble(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer pebbleTarget.Close()
	for name, target := range map[string]projection.Target[projection.KV]{"memory": projection.NewMemory(), "pebble": pebbleTarget} {
		t.Run(name, func(t *testing.T) {
			store := newMemoryStore(t)
			appendEvents(t, store, 300, 0)
			first, err := projection.New(store, target, kvProjection("counts", nil), projection.Options{})
			if err != nil {
				t.Fatal(err)
			}
			first.Start(context.Background())
			caughtUp(t, first, 300)
			second, err := projection.New(store, target, kvProjection("counts", nil), projection.Options{})
			if err != nil {
				t.Fatal(err)
			}
			second.Start(context.Background())
			defer second.Stop()
			waitFor(t, "the second on standby", func() bool { return state(t, second).State == projection.Standby })
			appendEvents(t, store, 100, 1)
			caughtUp(t, first, 400)
			if err := first.Stop(); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, store, 100, 2)
			caughtUp(t, second, 500)
			if st := state(t, second); st.State != projection.Running {
				t.Errorf("second after the takeover: %+v", st)
			}
			var model map[string]string
			if m, ok := target.(*projection.Memory); ok {
				model = dumpMemory(m, "counts")
			} else {
				model = dumpPebble(t, pebbleTarget, "counts")
			}
			sameModel(t, "after the takeover", model, fold(t, store, nil))
		})
	}
}
