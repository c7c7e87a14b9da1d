package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// TestWakeUpByNotify: with polling practically off, a subscription on one
// Store sees another Store's append, so the NOTIFY got through.
func TestWakeUpByNotify(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	writer := openTest(t, schema, Options{PollInterval: time.Hour})
	reader := openTest(t, schema, Options{PollInterval: time.Hour})
	wantWokenWithin(t, writer, reader, hangGuard)
}

// TestWakeUpByPoll: with every NOTIFY lost, the poll still wakes the
// subscription.
func TestWakeUpByPoll(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	writer := openTest(t, schema, Options{noNotify: true})
	reader := openTest(t, schema, Options{PollInterval: 100 * time.Millisecond})
	wantWokenWithin(t, writer, reader, hangGuard)
}

func wantWokenWithin(t *testing.T, writer, reader *Store, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within+10*time.Second)
	defer cancel()
	msgs := make(chan annals.Message, 4)
	go func() {
		for m, err := range reader.SubscribeToAll(ctx, annals.SubscribeAllOptions{}) {
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	if m := <-msgs; m.Kind != annals.MessageCaughtUp {
		t.Fatalf("first message %+v, want caught-up", m)
	}
	start := time.Now()
	res, err := writer.Append(ctx, "woken-1", annals.NoStream, annals.EventData{Type: "Woken"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.Kind != annals.MessageEvent || m.Event.Position != res.LastPosition {
			t.Fatalf("got %+v, want the event at %d", m, res.LastPosition)
		}
		t.Logf("the other store's subscription had the event after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(within):
		t.Fatalf("the other store's subscription was not woken within %v", within)
	}
}

// TestTerminatedConnections kills every connection of a Store, again and
// again, while writers append and a subscription follows $all. Each append
// must end in success (and be in the log where it was acknowledged) or in
// a clear error (ErrNotWritten: not in the log; ErrCommitUnknown: either);
// the log stays gapless and the subscription, once its listener has
// reconnected, delivers all of it.
func TestTerminatedConnections(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	s := openTest(t, schema, Options{appName: schema, PollInterval: 100 * time.Millisecond})
	pool := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	var (
		mu       sync.Mutex
		acked    = map[uuid.UUID]annals.Position{}
		notWrit  = map[uuid.UUID]bool{}
		unknown  = map[uuid.UUID]bool{}
		wg       sync.WaitGroup
		kills    atomic.Int64
		runFor   = 3 * time.Second
		stopAt   = time.Now().Add(runFor)
		killDone = make(chan struct{})
	)
	if testing.Short() {
		stopAt = time.Now().Add(time.Second)
	}
	// A live subscription through the storm: its reads are retried, its
	// listener reconnects.
	live := make(chan annals.Event, 1<<16)
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	subDone := make(chan error, 1)
	go func() {
		for m, err := range s.SubscribeToAll(subCtx, annals.SubscribeAllOptions{}) {
			if err != nil {
				subDone <- err
				return
			}
			if m.Kind == annals.MessageEvent {
				live <- m.Event
			}
		}
	}()
	// The killing goes on past stopAt until a connection was terminated
	// (a loaded machine may have none open at a given moment); the
	// writers until it stops.
	go func() {
		defer close(killDone)
		for time.Now().Before(stopAt) || kills.Load() == 0 {
			time.Sleep(150 * time.Millisecond)
			var n int64
			if err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, schema).Scan(&n); err != nil {
				t.Errorf("terminating: %v", err)
				return
			}
			kills.Add(n)
		}
	}()
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !isClosed(killDone); i++ {
				id := uuid.New()
				res, err := s.Append(ctx, fmt.Sprintf("kill-%d", w), annals.Any, annals.EventData{ID: id, Type: "Survived"})
				mu.Lock()
				switch {
				case err == nil:
					acked[id] = res.LastPosition
				case errors.Is(err, ErrNotWritten):
					notWrit[id] = true
				case errors.Is(err, ErrCommitUnknown):
					unknown[id] = true
				default:
					t.Errorf("writer %d: an unclear error: %v", w, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-killDone
	if t.Failed() {
		return
	}
	// The log, read once the killing stopped, and the live subscription.
	logLen := checkStorm(t, ctx, s, acked, notWrit, live, subDone, func() {
		if kills.Load() == 0 {
			t.Fatalf("no connection was terminated: the test proved nothing")
		}
	})
	// And it goes on live after the storm.
	res, err := s.Append(ctx, "after-1", annals.NoStream, annals.EventData{Type: "After"})
	if err != nil {
		t.Fatalf("append after the connections came back: %v", err)
	}
	select {
	case e := <-live:
		if e.Position != res.LastPosition {
			t.Fatalf("after the storm the subscription delivered position %d, want %d", e.Position, res.LastPosition)
		}
	case err := <-subDone:
		t.Fatalf("the live subscription ended: %v", err)
	case <-time.After(hangGuard):
		t.Fatalf("the live subscription missed the append after the storm")
	}
	t.Logf("%d backends terminated; %d appends acknowledged and in place, %d not written, %d unknown; log of %d gapless",
		kills.Load(), len(acked), len(notWrit), len(unknown), logLen)
}

// checkStorm checks a store after appends through failures: the log is
// gapless and holds every event once, every acknowledged event at its
// acknowledged position and none answered ErrNotWritten; then (after
// between, if set) the live subscription delivers the whole log in order.
// It returns the log's length.
func checkStorm(t *testing.T, ctx context.Context, s *Store, acked map[uuid.UUID]annals.Position, notWritten map[uuid.UUID]bool,
	live <-chan annals.Event, subDone <-chan error, between func()) (logLen int) {
	t.Helper()
	var log []annals.Event
	for e, err := range s.ReadAll(ctx, annals.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	inLog := map[uuid.UUID]annals.Position{}
	for i, e := range log {
		if e.Position != annals.Position(i+1) {
			t.Fatalf("the log has a gap: position %d at index %d", e.Position, i)
		}
		if _, dup := inLog[e.ID]; dup {
			t.Fatalf("event %s is in the log twice", e.ID)
		}
		inLog[e.ID] = e.Position
	}
	for id, pos := range acked {
		if inLog[id] != pos {
			t.Fatalf("acknowledged event %s at %d is at %d in the log", id, pos, inLog[id])
		}
	}
	for id := range notWritten {
		if _, ok := inLog[id]; ok {
			t.Fatalf("event %s was answered ErrNotWritten but is in the log", id)
		}
	}
	if between != nil {
		between()
	}
	for i := range log {
		select {
		case e := <-live:
			if e.Position != log[i].Position || e.ID != log[i].ID {
				t.Fatalf("the live subscription's event %d is position %d, the log's is %d", i, e.Position, log[i].Position)
			}
		case err := <-subDone:
			t.Fatalf("the live subscription ended: %v", err)
		case <-time.After(hangGuard):
			t.Fatalf("the live subscription delivered %d of %d events", i, len(log))
		}
	}
	return len(log)
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
