package command_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/google/uuid"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard
	t.Cleanup(cancel)
	return ctx
}

func newHandler(s annals.Store) *command.Handler[show, any, showEvent] {
	return &command.Handler[show, any, showEvent]{Store: s, Decider: showDecider, Codec: showCodec(codec.Options{})}
}

// streamLen counts the events of stream, straight from the store.
func streamLen(t *testing.T, s annals.Store, stream string) int {
	t.Helper()
	n := 0
	for _, err := range s.ReadStream(testContext(t), stream, annals.ReadStreamOptions{}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func mustHandle(t *testing.T, h *command.Handler[show, any, showEvent], stream string, cmd any, opts ...command.Option) command.Result[show, showEvent] {
	t.Helper()
	res, err := h.Handle(testContext(t), stream, cmd, opts...)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	return res
}

// Every store: decide and append, domain errors, concurrent writers on one
// stream, repeated commands.
func TestHandleEveryStore(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := teststores.Open(t, kind)
			t.Run("Decide", func(t *testing.T) { testDecide(t, s) })
			t.Run("DomainError", func(t *testing.T) { testDomainError(t, s) })
			t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, s) })
			t.Run("Repeated", func(t *testing.T) { testRepeated(t, s) })
			t.Run("Conflict", func(t *testing.T) { testConflictGivesUp(t, s) })
			t.Run("LostAcknowledgement", func(t *testing.T) { testLostAck(t, s) })
		})
	}
}

func testDecide(t *testing.T, s annals.Store) {
	h := newHandler(s)
	res := mustHandle(t, h, "show-decide", openShow{Capacity: 10})
	if res.NextExpected != annals.Exact(0) || res.Attempts != 1 || res.Repeated || !res.State.Open {
		t.Fatalf("open: %+v", res)
	}
	res = mustHandle(t, h, "show-decide", take{N: 3})
	if res.NextExpected != annals.Exact(1) || res.State.Taken != 3 || !reflect.DeepEqual(res.Events, []showEvent{ticketsTaken{N: 3}}) {
		t.Fatalf("take: %+v", res)
	}
	if res.FirstPosition == 0 || res.LastPosition != res.FirstPosition {
		t.Fatalf("take: positions %d..%d", res.FirstPosition, res.LastPosition)
	}
	// Nothing to decide: nothing appended, the revision decided on.
	res = mustHandle(t, h, "show-decide", noop{})
	if len(res.Events) != 0 || res.NextExpected != annals.Exact(1) || res.State.Taken != 3 {
		t.Fatalf("noop: %+v", res)
	}
	state, rev, err := h.Load(testContext(t), "show-decide")
	if err != nil || rev != annals.Exact(1) || state != (show{Open: true, Capacity: 10, Taken: 3}) {
		t.Fatalf("Load: %+v %v %v", state, rev, err)
	}
	state, rev, err = h.Load(testContext(t), "show-never-written")
	if err != nil || rev != annals.NoStream || state != (show{}) {
		t.Fatalf("Load of a stream without events: %+v %v %v", state, rev, err)
	}
}

func testDomainError(t *testing.T, s annals.Store) {
	h := newHandler(s)
	_, err := h.Handle(testContext(t), "show-domain", take{N: 1})
	if !errors.Is(err, errNotOpen) {
		t.Fatalf("take before open: %v, want errNotOpen", err)
	}
	mustHandle(t, h, "show-domain", openShow{Capacity: 2})
	res, err := h.Handle(testContext(t), "show-domain", take{N: 3})
	if !errors.Is(err, errSoldOut) || errors.Is(err, command.ErrConflict) || res.Attempts != 1 {
		t.Fatalf("take 3 of 2: %v (attempts %d), want errSoldOut at the first attempt", err, res.Attempts)
	}
	if n := streamLen(t, s, "show-domain"); n != 1 {
		t.Fatalf("a refused command wrote: %d events", n)
	}
}

// testConcurrent: writers with their own handlers (as separate processes
// would have) take tickets until sold out. Exactly the capacity is taken,
// and never more at any revision.
func testConcurrent(t *testing.T, s annals.Store) {
	const (
		capacity = 60
		writers  = 16
		stream   = "show-concurrent"
	)
	mustHandle(t, newHandler(s), stream, openShow{Capacity: capacity})
	var acked, conflicts atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			h := newHandler(s)
			h.Retry = command.Retry{MaxAttempts: 100, MaxBackoff: 20 * time.Millisecond}
			for {
				res, err := h.Handle(testContext(t), stream, take{N: 1})
				conflicts.Add(int64(res.Attempts - 1))
				if errors.Is(err, errSoldOut) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	wg.Wait()
	taken := 0
	for ev, err := range s.ReadStream(testContext(t), stream, annals.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "TicketsTaken" {
			if taken++; taken > capacity {
				t.Fatalf("%d taken at revision %d, capacity %d", taken, ev.Revision, capacity)
			}
		}
	}
	t.Logf("%d acknowledged, %d conflicts retried", acked.Load(), conflicts.Load())
	if taken != capacity || acked.Load() != capacity {
		t.Fatalf("%d taken, %d acknowledged; want %d", taken, acked.Load(), capacity)
	}
}

// testRepeated: a command handled again, at once or after others, appends
// nothing and returns the first outcome.
func testRepeated(t *testing.T, s annals.Store) {
	const stream = "show-repeated"
	h := newHandler(s)
	mustHandle(t, h, stream, openShow{Capacity: 10})
	id := uuid.New()
	first := mustHandle(t, h, stream, take{N: 2}, command.WithID(id))
	for round := range 2 {
		again := mustHandle(t, h, stream, take{N: 2}, command.WithID(id))
		if !again.Repeated || !reflect.DeepEqual(again.Events, first.Events) || again.NextExpected != first.NextExpected ||
			again.FirstPosition != first.FirstPosition || again.LastPosition != first.LastPosition {
			t.Fatalf("round %d: repeat %+v, first %+v", round, again, first)
		}
		if n := streamLen(t, s, stream); n != 2+round {
			t.Fatalf("round %d: the repeat wrote: %d events", round, n)
		}
		mustHandle(t, h, stream, take{N: 1}) // the stream moves on
	}
	// Even when the state has changed so that the command would now be
	// refused, the first outcome stands.
	mustHandle(t, h, stream, take{N: 6})
	again, err := h.Handle(testContext(t), stream, take{N: 2}, command.WithID(id))
	if err != nil || !again.Repeated || again.State.Taken != 10 {
		t.Fatalf("repeat on a sold-out show: %+v, %v", again, err)
	}
}

// racing appends a rival's event to the stream before each append it
// passes on, so that every decision the handler makes is stale.
type racing struct {
	annals.Store
	rivals atomic.Int64
}

func (r *racing) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	if _, err := r.Store.Append(ctx, stream, annals.Any, annals.EventData{Type: "TicketsTaken", Data: []byte(`{"n":0}`)}); err != nil {
		return annals.AppendResult{}, err
	}
	r.rivals.Add(1)
	return r.Store.Append(ctx, stream, expected, events...)
}

func testConflictGivesUp(t *testing.T, s annals.Store) {
	const stream = "show-conflict"
	mustHandle(t, newHandler(s), stream, openShow{Capacity: 10})
	r := &racing{Store: s}
	h := newHandler(r)
	h.Retry = command.Retry{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	res, err := h.Handle(testContext(t), stream, take{N: 1})
	var conflict *command.ConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, command.ErrConflict) || !errors.Is(err, annals.ErrWrongExpectedRevision) {
		t.Fatalf("err %v (%T), want a *ConflictError matching ErrConflict and ErrWrongExpectedRevision", err, err)
	}
	if conflict.Attempts != 3 || res.Attempts != 3 || conflict.Stream != stream || r.rivals.Load() != 3 {
		t.Fatalf("%+v, attempts %d, %d rivals: want 3 attempts, 3 rivals", conflict, res.Attempts, r.rivals.Load())
	}
	state, _, err := newHandler(s).Load(testContext(t), stream)
	if err != nil || state.Taken != 0 || streamLen(t, s, stream) != 4 {
		t.Fatalf("after giving up: %+v %v, %d events; want the opening and 3 rivals only", state, err, streamLen(t, s, stream))
	}
	// One conflict, then success: retried.
	h.Store = &racingOnce{Store: s}
	res = mustHandle(t, h, stream, take{N: 1})
	if res.Attempts != 2 || res.State.Taken != 1 {
		t.Fatalf("after one conflict: %+v, want success at attempt 2", res)
	}
}

// racingOnce is racing for the first append only.
type racingOnce struct {
	annals.Store
	done atomic.Bool
}

func (r *racingOnce) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	if !r.done.Swap(true) {
		if _, err := r.Store.Append(ctx, stream, annals.Any, annals.EventData{Type: "TicketsTaken", Data: []byte(`{"n":0}`)}); err != nil {
			return annals.AppendResult{}, err
		}
	}
	return r.Store.Append(ctx, stream, expected, events...)
}

// losing appends, then loses the answer, as a broken connection would.
type losing struct{ annals.Store }

var errLost = errors.New("connection lost")

func (l losing) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	if _, err := l.Store.Append(ctx, stream, expected, events...); err != nil {
		return annals.AppendResult{}, err
	}
	return annals.AppendResult{}, errLost
}

// testLostAck: the client never heard back and sends the command again:
// it was recorded once and the retry says so.
func testLostAck(t *testing.T, s annals.Store) {
	const stream = "show-lost"
	mustHandle(t, newHandler(s), stream, openShow{Capacity: 10})
	id := uuid.New()
	if _, err := newHandler(losing{s}).Handle(testContext(t), stream, take{N: 4}, command.WithID(id)); !errors.Is(err, errLost) {
		t.Fatalf("err %v, want the lost answer", err)
	}
	res := mustHandle(t, newHandler(s), stream, take{N: 4}, command.WithID(id))
	if !res.Repeated || !reflect.DeepEqual(res.Events, []showEvent{ticketsTaken{N: 4}}) || res.State.Taken != 4 || res.NextExpected != annals.Exact(1) {
		t.Fatalf("retry: %+v, want the first outcome", res)
	}
	if n := streamLen(t, s, stream); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

// An event the codec does not know stops the load, unless the codec skips
// unknown types.
func TestUnknownEvents(t *testing.T) {
	s := memory.New(memory.Options{})
	defer s.Close()
	h := newHandler(s)
	mustHandle(t, h, "show-unknown", openShow{Capacity: 5})
	if _, err := s.Append(testContext(t), "show-unknown", annals.Any, annals.EventData{Type: "PosterPrinted", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := h.Handle(testContext(t), "show-unknown", take{N: 1})
	var unknown *codec.UnknownTypeError
	if !errors.As(err, &unknown) || !errors.Is(err, codec.ErrUnknownType) || unknown.Type != "PosterPrinted" || unknown.Revision != 1 {
		t.Fatalf("err %v, want an UnknownTypeError for PosterPrinted at revision 1", err)
	}
	h.Codec = showCodec(codec.Options{SkipUnknown: true})
	if res := mustHandle(t, h, "show-unknown", take{N: 1}); res.State.Taken != 1 || res.NextExpected != annals.Exact(2) {
		t.Fatalf("skipping unknown types: %+v", res)
	}
}

func TestNotConfigured(t *testing.T) {
	h := &command.Handler[show, any, showEvent]{Decider: showDecider}
	if _, err := h.Handle(context.Background(), "s", take{N: 1}); err == nil {
		t.Fatal("a handler without a store handled a command")
	}
}

// A command id is scoped to its stream: on another stream it is another
// command.
func TestCommandIDPerStream(t *testing.T) {
	s := memory.New(memory.Options{})
	defer s.Close()
	h := newHandler(s)
	mustHandle(t, h, "show-a", openShow{Capacity: 5})
	mustHandle(t, h, "show-b", openShow{Capacity: 5})
	id := uuid.New()
	mustHandle(t, h, "show-a", take{N: 1}, command.WithID(id))
	res, err := h.Handle(testContext(t), "show-b", take{N: 1}, command.WithID(id))
	if err != nil || res.Repeated || res.State.Taken != 1 {
		t.Fatalf("the same command id on another stream: %+v, %v", res, err)
	}
}

// Handled tells whether a command id was handled on a stream: yes once
// its events are appended, no before, on another stream, or for a
// command that decided nothing.
func TestHandled(t *testing.T) {
	s := memory.New(memory.Options{})
	defer s.Close()
	h := newHandler(s)
	mustHandle(t, h, "show-a", openShow{Capacity: 5})
	id, none := uuid.New(), uuid.New()
	ask := func(stream string, id uuid.UUID) bool {
		t.Helper()
		ok, err := h.Handled(testContext(t), stream, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if ask("show-a", id) {
		t.Fatal("handled before it was")
	}
	mustHandle(t, h, "show-a", take{N: 1}, command.WithID(id))
	mustHandle(t, h, "show-a", noop{}, command.WithID(none))
	if !ask("show-a", id) || ask("show-b", id) || ask("show-a", none) {
		t.Fatalf("after: %v on its stream, %v on another, %v for a command of no event", ask("show-a", id), ask("show-b", id), ask("show-a", none))
	}
	if _, err := h.Handled(testContext(t), "show-a", uuid.UUID{}); err == nil {
		t.Fatal("Handled took no command id")
	}
}

// After a conflict the handler reads only what came since its load; if the
// stream was deleted and written again in between, it notices and loads it
// anew rather than fold the new life onto the old state.
func TestCatchUpAfterConflict(t *testing.T) {
	for _, kind := range []string{"memory", "server"} {
		t.Run(kind, func(t *testing.T) {
			s := teststores.Open(t, kind)
			const stream = "show-catch-up"
			h := newHandler(s)
			mustHandle(t, h, stream, openShow{Capacity: 100})
			for range 20 {
				mustHandle(t, h, stream, take{N: 1})
			}
			c := &counting{Store: &racingOnce{Store: s}}
			res := mustHandle(t, newHandler(c), stream, take{N: 1})
			// 21 events loaded; then the one the catch-up starts from and
			// the rival's.
			if res.Attempts != 2 || res.State.Taken != 21 || c.read.Load() != 21+2 {
				t.Fatalf("attempts %d, taken %d, %d events read; want 2, 21, 23", res.Attempts, res.State.Taken, c.read.Load())
			}

			// The rival deletes the stream and opens it again, smaller: the
			// old state must not survive into the new life.
			r := &reopening{Store: s}
			res, err := newHandler(r).Handle(testContext(t), stream, take{N: 2})
			if err != nil || res.Attempts != 2 || res.State != (show{Open: true, Capacity: 2, Taken: 2}) {
				t.Fatalf("after delete and reopen: %+v, %v", res, err)
			}
		})
	}
}

// reopening deletes the stream and opens it again with capacity 2 before
// the first append it passes on.
type reopening struct {
	annals.Store
	done atomic.Bool
}

func (r *reopening) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	if !r.done.Swap(true) {
		if _, err := r.Store.Delete(ctx, stream, annals.Any); err != nil {
			return annals.AppendResult{}, err
		}
		if _, err := r.Store.Append(ctx, stream, annals.NoStream, annals.EventData{Type: "ShowOpened", Data: []byte(`{"capacity":2}`)}); err != nil {
			return annals.AppendResult{}, err
		}
	}
	return r.Store.Append(ctx, stream, expected, events...)
}
