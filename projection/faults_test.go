package projection_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals/projection"
)

var errInjected = errors.New("injected fault")

// faulty wraps a real target and makes its transactions fail at random:
// Begin fails, Commit rolls back and fails, or Commit goes through and
// still reports an error (a lost acknowledgement).
type faulty[M any] struct {
	projection.Target[M]
	mu  sync.Mutex
	rng *rand.Rand
	// percent of the calls that fail; always makes every commit fail.
	percent int
	always  bool
	lost    int // commits that went through but reported an error
}

func (f *faulty[M]) roll() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.always {
		return 0
	}
	if f.rng.IntN(100) >= f.percent {
		return -1
	}
	return f.rng.IntN(3)
}

func (f *faulty[M]) Begin(ctx context.Context, name string) (projection.Tx[M], error) {
	if f.roll() == 2 {
		return nil, errInjected
	}
	tx, err := f.Target.Begin(ctx, name)
	if err != nil {
		return nil, err
	}
	return &faultyTx[M]{Tx: tx, f: f}, nil
}

type faultyTx[M any] struct {
	projection.Tx[M]
	f *faulty[M]
}

func (t *faultyTx[M]) Commit(ctx context.Context) error {
	switch t.f.roll() {
	case 0:
		t.Tx.Rollback(ctx)
		return errInjected
	case 1:
		if err := t.Tx.Commit(ctx); err != nil {
			return err
		}
		t.f.mu.Lock()
		t.f.lost++
		t.f.mu.Unlock()
		return errInjected
	}
	return t.Tx.Commit(ctx)
}

// Failed transactions and lost commit acknowledgements neither skip nor
// repeat an event.
func TestTargetFaults(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	store := newMemoryStore(t)
	appendEvents(t, store, 1000, 0)
	for name, target := range map[string]projection.Target[projection.KV]{"memory": projection.NewMemory(), "pebble": openPebble(t)} {
		f := &faulty[projection.KV]{Target: target, rng: rand.New(rand.NewPCG(uint64(seed), 3)), percent: 20}
		p := kvProjection("faults", nil)
		p.Policy = projection.ErrorPolicy{MaxRetries: projection.MaxRetriesLimit, Backoff: time.Microsecond}
		pr, err := projection.New(store, f, p, projection.Options{BatchEvents: 10})
		if err != nil {
			t.Fatal(err)
		}
		pr.Start(context.Background())
		caughtUp(t, pr, 1000)
		if err := pr.Stop(); err != nil {
			t.Fatal(err)
		}
		if f.lost == 0 {
			t.Fatalf("%s: no lost acknowledgement was injected", name)
		}
		var got map[string]string
		if m, ok := target.(*projection.Memory); ok {
			got = dumpMemory(m, "faults")
		} else {
			got = dumpPebble(t, target.(*projection.Pebble), "faults")
		}
		sameModel(t, name, got, fold(t, store, nil))
		if cp, _ := target.Load(context.Background(), "faults"); cp.Position != 1000 {
			t.Fatalf("%s: checkpoint %d", name, cp.Position)
		}
	}
}

// A target that keeps failing stops the projection after the retries,
// even under the Park policy: the event is not at fault.
func TestTargetDown(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 10, 0)
	target := projection.NewMemory()
	f := &faulty[projection.KV]{Target: target, always: true}
	p := kvProjection("down", nil)
	p.Policy = projection.ErrorPolicy{MaxRetries: 2, Backoff: time.Millisecond, OnFailure: projection.Park}
	pr, err := projection.New(store, f, p, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = pr.Run(context.Background())
	var failed *projection.FailedError
	var he *projection.HandlerError
	if !errors.As(err, &failed) || errors.As(err, &he) || !errors.Is(err, errInjected) || failed.Attempts != 3 {
		t.Fatalf("Run = %v", err)
	}
	if st := state(t, pr); st.State != projection.Failed || st.Parked != 0 || st.Position != 0 {
		t.Fatalf("status %+v", st)
	}
	if got := dumpMemory(target, "down"); len(got) != 0 {
		t.Fatalf("model %v", got)
	}
}

func openPebble(t testing.TB) *projection.Pebble {
	t.Helper()
	p, err := projection.OpenPebble(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
