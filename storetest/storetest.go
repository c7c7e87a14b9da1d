// Package storetest is the conformance suite of annals.Store, in the style of
// River's riverdrivertest: a backend's tests call [Exercise] with a function
// that makes a fresh store, and every behaviour of the contract runs as a
// subtest against it.
//
//	func TestConformance(t *testing.T) {
//		storetest.Exercise(t, func(t *testing.T) annals.Store {
//			s := memory.New(memory.Options{})
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite uses only the public annals API, so any backend can run it.
// Its List group checks the optional annals.StreamLister and skips, saying
// so, for a store that does not implement it.
//
// A store that cannot keep part of the contract by the way it reaches its
// data (package remote, over the KurrentDB protocol) runs [ExerciseWith]
// and names what it cannot keep in [Limitations], the suite's capability
// switches: the subtests consult those switches, never the store's type,
// and a skip for a store's sake names its switch. The suite runs on the
// memory, embedded and PostgreSQL stores (Exercise, in each one's
// TestConformance) and on package remote against annals servers over the
// memory, embedded and PostgreSQL stores (ExerciseWith).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Exercise runs the conformance suite against the stores newStore makes.
//
// newStore is called once per subtest (sometimes more) and must return a
// fresh, empty store with default limits (annals.Limits{}), closed by a
// t.Cleanup it registers. Some subtests close the store themselves, so that
// cleanup must tolerate a second Close. Subtests call t.Parallel, so stores
// made by concurrent calls must not share state.
func Exercise(t *testing.T, newStore func(t *testing.T) annals.Store) {
	t.Helper()
	groups := []struct {
		name string
		run  func(t *testing.T, newStore func(t *testing.T) annals.Store)
	}{
		{"Events", exerciseEvents},
		{"Append", exerciseAppend},
		{"Idempotency", exerciseIdempotency},
		{"Read", exerciseRead},
		{"Filter", exerciseFilter},
		{"Lifecycle", exerciseLifecycle},
		{"Metadata", exerciseMetadata},
		{"Subscribe", exerciseSubscribe},
		{"BadInput", exerciseBadInput},
		{"Concurrency", exerciseConcurrency},
		{"List", exerciseList},
		{"Multi", exerciseMulti},
		{"DCB", exerciseDCB},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, newStore)
		})
	}
}

// storeTest is one subtest: it gets a fresh store.
type storeTest struct {
	name string
	run  func(t *testing.T, s annals.Store)
}

func runAll(t *testing.T, newStore func(t *testing.T) annals.Store, tests []storeTest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

const (
	// testTimeout bounds every subtest, so a broken store fails rather than
	// hangs: a hang guard, far above any normal run (milliseconds), so
	// that a loaded machine never fails a subtest.
	testTimeout = 5 * time.Minute
	// waitTimeout bounds the wait for one subscription message (a hang
	// guard too).
	waitTimeout = 5 * time.Minute
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ev returns an event with a fresh id.
func ev(typ string) annals.EventData {
	return annals.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`)}
}

// evData returns an event with a fresh id and data.
func evData(typ, data string) annals.EventData {
	return annals.EventData{ID: uuid.New(), Type: typ, Data: []byte(data)}
}

// evs returns n events of type typ with fresh ids and distinct data.
func evs(n int, typ string) []annals.EventData {
	out := make([]annals.EventData, n)
	for i := range out {
		out[i] = evData(typ, fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func mustAppend(t *testing.T, ctx context.Context, s annals.Store, stream string, expected annals.ExpectedRevision, events ...annals.EventData) annals.AppendResult {
	t.Helper()
	r, err := s.Append(ctx, stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events): %v", stream, expected, len(events), err)
	}
	return r
}

// collect drains an event iterator, stopping at the first error.
func collect(seq iter.Seq2[annals.Event, error]) ([]annals.Event, error) {
	var out []annals.Event
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func readStream(ctx context.Context, s annals.Store, stream string, opts annals.ReadStreamOptions) ([]annals.Event, error) {
	return collect(s.ReadStream(ctx, stream, opts))
}

func mustReadStream(t *testing.T, ctx context.Context, s annals.Store, stream string, opts annals.ReadStreamOptions) []annals.Event {
	t.Helper()
	out, err := readStream(ctx, s, stream, opts)
	if err != nil {
		t.Fatalf("ReadStream(%q, %+v): %v", stream, opts, err)
	}
	return out
}

func mustReadAll(t *testing.T, ctx context.Context, s annals.Store, opts annals.ReadAllOptions) []annals.Event {
	t.Helper()
	out, err := collect(s.ReadAll(ctx, opts))
	if err != nil {
		t.Fatalf("ReadAll(%+v): %v", opts, err)
	}
	return out
}

func countAll(t *testing.T, ctx context.Context, s annals.Store) int {
	t.Helper()
	return len(mustReadAll(t, ctx, s, annals.ReadAllOptions{}))
}

// wantReadErr checks that reading stream fails with target and yields no
// event.
func wantReadErr(t *testing.T, ctx context.Context, s annals.Store, stream string, target error) {
	t.Helper()
	got, err := readStream(ctx, s, stream, annals.ReadStreamOptions{})
	if !errors.Is(err, target) {
		t.Fatalf("ReadStream(%q): error %v, want %v", stream, err, target)
	}
	if len(got) != 0 {
		t.Fatalf("ReadStream(%q): yielded %d events before the error, want none", stream, len(got))
	}
}

func revisions(events []annals.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = uint64(e.Revision)
	}
	return out
}

func positions(events []annals.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = uint64(e.Position)
	}
	return out
}

func ids(events []annals.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func dataIDs(events []annals.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// seq returns lo, lo+1, ..., hi (empty if lo > hi).
func seq(lo, hi uint64) []uint64 {
	if lo > hi {
		return nil
	}
	out := make([]uint64, 0, hi-lo+1)
	for r := lo; ; r++ {
		out = append(out, r)
		if r == hi {
			return out
		}
	}
}

// rseq returns hi, hi-1, ..., lo.
func rseq(hi, lo uint64) []uint64 {
	out := seq(lo, hi)
	slices.Reverse(out)
	return out
}

func wantRevisions(t *testing.T, what string, events []annals.Event, want []uint64) {
	t.Helper()
	if got := revisions(events); !slices.Equal(got, want) {
		t.Fatalf("%s: revisions %v, want %v", what, got, want)
	}
}

func wantPositions(t *testing.T, what string, events []annals.Event, want []uint64) {
	t.Helper()
	if got := positions(events); !slices.Equal(got, want) {
		t.Fatalf("%s: positions %v, want %v", what, got, want)
	}
}

// wantWrongExpected checks that err is a *WrongExpectedRevisionError with the
// given fields.
func wantWrongExpected(t *testing.T, err error, stream string, expected, actual annals.ExpectedRevision) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want wrong expected revision (expected %v, actual %v)", expected, actual)
	}
	if !errors.Is(err, annals.ErrWrongExpectedRevision) {
		t.Fatalf("error %v does not match ErrWrongExpectedRevision", err)
	}
	var w *annals.WrongExpectedRevisionError
	if !errors.As(err, &w) {
		t.Fatalf("error %v (%T) is not a *WrongExpectedRevisionError", err, err)
	}
	if w.Stream != stream || w.Expected != expected || w.Actual != actual {
		t.Fatalf("WrongExpectedRevisionError{Stream: %q, Expected: %v, Actual: %v}, want {%q, %v, %v}",
			w.Stream, w.Expected, w.Actual, stream, expected, actual)
	}
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// subscription forwards a subscription's messages to a channel so a test
// can wait for them with a timeout.
type subscription struct {
	ch     chan subItem
	cancel context.CancelFunc // cancels the subscription's context
}

type subItem struct {
	msg annals.Message
	err error
}

// subscribe starts open in a goroutine. The subscription ends when the test
// ends.
func subscribe(t *testing.T, ctx context.Context, open func(ctx context.Context) iter.Seq2[annals.Message, error]) *subscription {
	t.Helper()
	subCtx, cancel := context.WithCancel(ctx)
	sub := &subscription{ch: make(chan subItem, 16), cancel: cancel}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(sub.ch)
		for m, err := range open(subCtx) {
			select {
			case sub.ch <- subItem{m, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		close(stop)
		<-done
	})
	return sub
}

func subscribeAll(t *testing.T, ctx context.Context, s annals.Store, opts annals.SubscribeAllOptions) *subscription {
	t.Helper()
	return subscribe(t, ctx, func(ctx context.Context) iter.Seq2[annals.Message, error] {
		return s.SubscribeToAll(ctx, opts)
	})
}

func subscribeStream(t *testing.T, ctx context.Context, s annals.Store, stream string, opts annals.SubscribeStreamOptions) *subscription {
	t.Helper()
	return subscribe(t, ctx, func(ctx context.Context) iter.Seq2[annals.Message, error] {
		return s.SubscribeToStream(ctx, stream, opts)
	})
}

func (s *subscription) next(t *testing.T) subItem {
	t.Helper()
	select {
	case it, ok := <-s.ch:
		if !ok {
			t.Fatalf("subscription ended without an error")
		}
		return it
	case <-time.After(waitTimeout):
		t.Fatalf("no subscription message within %v", waitTimeout)
	}
	panic("unreachable")
}

func kindName(k annals.MessageKind) string {
	switch k {
	case annals.MessageEvent:
		return "event"
	case annals.MessageCheckpoint:
		return "checkpoint"
	case annals.MessageCaughtUp:
		return "caught-up"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// nextKind waits for the next message and checks its kind.
func (s *subscription) nextKind(t *testing.T, kind annals.MessageKind) annals.Message {
	t.Helper()
	it := s.next(t)
	if it.err != nil {
		t.Fatalf("subscription failed: %v (want a %s message)", it.err, kindName(kind))
	}
	if it.msg.Kind != kind {
		t.Fatalf("got a %s message %+v, want a %s message", kindName(it.msg.Kind), it.msg, kindName(kind))
	}
	return it.msg
}

// events waits for n event messages, with no other message in between.
func (s *subscription) events(t *testing.T, n int) []annals.Event {
	t.Helper()
	out := make([]annals.Event, 0, n)
	for range n {
		out = append(out, s.nextKind(t, annals.MessageEvent).Event)
	}
	return out
}

// wantErr waits for the subscription to end with target.
func (s *subscription) wantErr(t *testing.T, target error) {
	t.Helper()
	it := s.next(t)
	if it.err == nil {
		t.Fatalf("got a %s message %+v, want the subscription to end with %v", kindName(it.msg.Kind), it.msg, target)
	}
	if !errors.Is(it.err, target) {
		t.Fatalf("subscription ended with %v, want %v", it.err, target)
	}
	select {
	case it, ok := <-s.ch:
		if ok {
			t.Fatalf("subscription went on after its error: %+v", it)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("subscription did not return after its error")
	}
}
