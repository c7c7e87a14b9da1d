// Package projectiontest is the contract suite of projection.Target, in
// the style of storetest (and River's driver suite): a target's tests call
// [Exercise] with a function that makes a fresh target, and every part of
// the contract documented on projection.Target, projection.Tx,
// projection.Leaser and projection.Lease runs as a subtest against it:
//
//   - a transaction's model writes, checkpoint and parked events show
//     together at Commit and never after Rollback (Tx);
//   - a checkpoint is saved only from the position read, else
//     ErrCheckpointMoved, a concurrent writer included (Checkpoint);
//   - parked events are added, listed oldest first, forgotten and cleared
//     in the transaction that counts them (Parked);
//   - generations: Generation, Switch (ErrGenerationMoved), Drop
//     (ErrActiveGeneration), each generation's slot its own (Generation);
//   - Load, ParkedEvents and Generation of a name never written (Unknown);
//   - the lease of a Leaser: one holder, free after Release, Lost when the
//     session behind it breaks (Lease).
//
// A target runs it so:
//
//	func TestTargetContract(t *testing.T) {
//		projectiontest.Exercise(t, func(t *testing.T) projection.Target[projection.KV] {
//			return projection.NewMemory()
//		}, projectiontest.Options[projection.KV]{Model: projectiontest.KV()})
//	}
//
// Targets differ in what the suite can provoke, not in the contract: the
// switches of [Options] say what a target offers (a way to break its
// lease's session), and a subtest that needs what a target lacks is
// skipped, naming the switch. The suite uses only the public projection
// API.
package projectiontest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

// Options are how the suite reaches a target's read model, and the
// capability switches where targets differ.
type Options[M any] struct {
	// Model writes and reads the read model through a transaction's M.
	// Required.
	Model Model[M]
	// BreakLeases, if set, breaks the sessions behind the leases target
	// holds, as a lost database connection does; the suite then requires
	// Lost to close. Nil: the target's leases cannot be lost (they live
	// in the process), and Lease/LostOnBrokenSession is skipped.
	BreakLeases func(t *testing.T, target projection.Target[M])
	// Deviations are the subtests (by name below Exercise's test, such
	// as "Parked/ParkThenUnparkInOneTx") the target is known to fail,
	// each with why; they are skipped with that reason, so the
	// disagreement is recorded where the target runs the suite.
	Deviations map[string]string
}

// Model is a read model seen through a transaction: string keys and
// values, stored however the target stores models.
type Model[M any] struct {
	// Put sets key to value.
	Put func(ctx context.Context, m M, key, value string) error
	// Get returns key's value as the transaction sees it.
	Get func(ctx context.Context, m M, key string) (value string, ok bool, err error)
}

// KV is the Model of the targets whose model is a projection.KV (the
// in-memory and pebble targets).
func KV() Model[projection.KV] {
	return Model[projection.KV]{
		Put: func(_ context.Context, kv projection.KV, key, value string) error {
			return kv.Set([]byte(key), []byte(value))
		},
		Get: func(_ context.Context, kv projection.KV, key string) (string, bool, error) {
			v, ok, err := kv.Get([]byte(key))
			return string(v), ok, err
		},
	}
}

// Exercise runs the contract suite against the targets newTarget makes.
//
// newTarget is called once per subtest and must return a fresh, empty
// target, closed by a t.Cleanup it registers. Subtests run one after
// another: a memory or pebble target has one transaction at a time, and
// the suite opens a second only where it waits for the first to end.
func Exercise[M any](t *testing.T, newTarget func(t *testing.T) projection.Target[M], opts Options[M]) {
	t.Helper()
	if opts.Model.Put == nil || opts.Model.Get == nil {
		t.Fatal("projectiontest: Options.Model is required")
	}
	s := &suite[M]{newTarget: newTarget, opts: opts}
	groups := []struct {
		name  string
		cases []testCase[M]
	}{
		{"Tx", s.txCases()},
		{"Checkpoint", s.checkpointCases()},
		{"Parked", s.parkedCases()},
		{"Generation", s.generationCases()},
		{"Unknown", s.unknownCases()},
		{"Lease", s.leaseCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					if why, ok := opts.Deviations[g.name+"/"+c.name]; ok {
						t.Skipf("known deviation of this target from the contract: %s", why)
					}
					c.run(t, newTarget(t))
				})
			}
		})
	}
}

type suite[M any] struct {
	newTarget func(t *testing.T) projection.Target[M]
	opts      Options[M]
}

type testCase[M any] struct {
	name string
	run  func(t *testing.T, target projection.Target[M])
}

const (
	// testTimeout bounds every subtest: a hang guard far above a normal
	// run (milliseconds), so a broken target fails rather than hangs.
	testTimeout = 5 * time.Minute
	// pollInterval is how often waitFor checks its condition.
	pollInterval = 10 * time.Millisecond
	// generationSeparator separates a projection's name from its
	// generation in a slot name, as package projection documents its
	// slots: the name for generation 0, name 0x01 generation after.
	generationSeparator = "\x01"
)

// slot is the target's slot of generation gen of the projection name.
// Generation/Switch checks that the targets agree with it: a slot the
// suite wrote is dropped by the switch away from its generation.
func slot(name string, gen uint64) string {
	if gen == 0 {
		return name
	}
	return name + generationSeparator + strconv.FormatUint(gen, 10)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test at testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", testTimeout, what)
		}
		time.Sleep(pollInterval)
	}
}

func begin[M any](t *testing.T, ctx context.Context, target projection.Target[M], slot string) projection.Tx[M] {
	t.Helper()
	tx, err := target.Begin(ctx, slot)
	if err != nil {
		t.Fatalf("Begin(%q): %v", slot, err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

func commit[M any](t *testing.T, ctx context.Context, tx projection.Tx[M]) {
	t.Helper()
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func rollback[M any](t *testing.T, ctx context.Context, tx projection.Tx[M]) {
	t.Helper()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
}

func save[M any](t *testing.T, ctx context.Context, tx projection.Tx[M], prev annals.Position, cp projection.Checkpoint) {
	t.Helper()
	if err := tx.SaveCheckpoint(ctx, prev, cp); err != nil {
		t.Fatalf("SaveCheckpoint(%d, %+v): %v", prev, cp, err)
	}
}

func (s *suite[M]) put(t *testing.T, ctx context.Context, tx projection.Tx[M], key, value string) {
	t.Helper()
	if err := s.opts.Model.Put(ctx, tx.Model(), key, value); err != nil {
		t.Fatalf("Model.Put(%q): %v", key, err)
	}
}

// value reads key through tx: its value, or "" if absent (the suite never
// writes an empty value).
func (s *suite[M]) value(t *testing.T, ctx context.Context, tx projection.Tx[M], key string) string {
	t.Helper()
	v, ok, err := s.opts.Model.Get(ctx, tx.Model(), key)
	if err != nil {
		t.Fatalf("Model.Get(%q): %v", key, err)
	}
	if ok && v == "" {
		t.Fatalf("Model.Get(%q): an empty value, which the suite never writes", key)
	}
	return v
}

// committedValue reads key in a transaction of its own on slot.
func (s *suite[M]) committedValue(t *testing.T, ctx context.Context, target projection.Target[M], slot, key string) string {
	t.Helper()
	tx := begin(t, ctx, target, slot)
	defer rollback(t, ctx, tx)
	return s.value(t, ctx, tx, key)
}

func wantValue(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: model value %q, want %q (\"\": absent)", what, got, want)
	}
}

func wantCheckpoint[M any](t *testing.T, ctx context.Context, target projection.Target[M], slot string, want projection.Checkpoint) {
	t.Helper()
	got, err := target.Load(ctx, slot)
	if err != nil {
		t.Fatalf("Load(%q): %v", slot, err)
	}
	if got != want {
		t.Fatalf("Load(%q) = %+v, want %+v", slot, got, want)
	}
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
