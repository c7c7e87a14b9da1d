package command_test

import (
	"context"
	"iter"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/internal/teststores"
	"github.com/google/uuid"
)

// counting counts the events read from streams other than snapshot
// streams.
type counting struct {
	annals.Store
	read atomic.Int64
}

func (c *counting) ReadStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		for ev, err := range c.Store.ReadStream(ctx, stream, opts) {
			if err == nil && !strings.HasPrefix(stream, "snapshot-") {
				c.read.Add(1)
			}
			if !yield(ev, err) {
				return
			}
		}
	}
}

func snapshotting(s annals.Store, every uint64, version int) *command.Handler[show, any, showEvent] {
	h := newHandler(s)
	h.Snapshots = &command.Snapshots[show]{Every: every, Version: version}
	return h
}

func TestSnapshots(t *testing.T) {
	for _, kind := range []string{"memory", "embedded", "server"} {
		t.Run(kind, func(t *testing.T) { testSnapshots(t, teststores.Open(t, kind)) })
	}
}

func testSnapshots(t *testing.T, s annals.Store) {
	const (
		stream = "show-snap"
		every  = 10
	)
	c := &counting{Store: s}
	h := snapshotting(c, every, 1)
	mustHandle(t, h, stream, openShow{Capacity: 1000})
	early := uuid.New()
	mustHandle(t, h, stream, take{N: 1}, command.WithID(early))
	for range 48 {
		mustHandle(t, h, stream, take{N: 1})
	}
	if n := streamLen(t, s, "snapshot-"+stream); n == 0 || n > command.SnapshotsKept {
		t.Fatalf("%d snapshots visible, want 1 to %d", n, command.SnapshotsKept)
	}

	// A load starts at the latest snapshot: it reads at most every events
	// (and the one the snapshot names).
	c.read.Store(0)
	state, rev, err := h.Load(testContext(t), stream)
	if err != nil || state.Taken != 49 || rev != annals.Exact(49) {
		t.Fatalf("Load: %+v %v %v", state, rev, err)
	}
	if n := c.read.Load(); n > every+1 {
		t.Fatalf("a load after a snapshot read %d events, want at most %d", n, every+1)
	}

	// A command handled before the snapshot is still recognised.
	res := mustHandle(t, h, stream, take{N: 1}, command.WithID(early))
	if !res.Repeated || res.NextExpected != annals.Exact(1) {
		t.Fatalf("repeat of a command before the snapshot: %+v", res)
	}

	// Writers that do not snapshot leave the snapshot behind: it costs
	// reading, never a wrong state.
	plain := newHandler(s)
	for range 3 * every {
		mustHandle(t, plain, stream, take{N: 2})
	}
	c.read.Store(0)
	state, rev, err = h.Load(testContext(t), stream)
	if err != nil || state.Taken != 49+6*every || rev != annals.Exact(49+3*every) {
		t.Fatalf("Load with a stale snapshot: %+v %v %v", state, rev, err)
	}
	if n := c.read.Load(); n <= 3*every || n > 4*every+1 {
		t.Fatalf("a load from a stale snapshot read %d events, want the %d after it", n, 3*every)
	}

	// Another state version ignores the snapshots: everything is read.
	c.read.Store(0)
	if state, _, err := snapshotting(c, every, 2).Load(testContext(t), stream); err != nil || state.Taken != 49+6*every {
		t.Fatalf("Load by version 2: %+v %v", state, err)
	}
	if n := c.read.Load(); n != 50+3*every {
		t.Fatalf("version 2 read %d events, want all %d", n, 50+3*every)
	}

	// Deleted and written again (revisions continue): the snapshot names
	// an event the stream no longer shows, so it is ignored.
	if _, err := s.Delete(testContext(t), stream, annals.Any); err != nil {
		t.Fatal(err)
	}
	state, rev, err = h.Load(testContext(t), stream)
	if err != nil || state != (show{}) || rev != annals.NoStream {
		t.Fatalf("Load after delete: %+v %v %v", state, rev, err)
	}
	mustHandle(t, h, stream, openShow{Capacity: 3})
	res = mustHandle(t, h, stream, take{N: 2})
	if res.State != (show{Open: true, Capacity: 3, Taken: 2}) {
		t.Fatalf("after delete and reopen: %+v", res.State)
	}
}

// A command older than the snapshot's window of command ids is recognised
// by the store itself: its event ids are recorded elsewhere in the stream.
// Through a server too: the refusal keeps where the ids are recorded.
func TestRepeatBeyondSnapshotWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a thousand commands with snapshots (half a minute under the race detector)")
	}
	for _, kind := range []string{"memory", "server"} {
		t.Run(kind, func(t *testing.T) {
			s := teststores.Open(t, kind)
			h := snapshotting(s, 100, 1)
			const stream = "show-window"
			mustHandle(t, h, stream, openShow{Capacity: 1 << 30})
			first := uuid.New()
			want := mustHandle(t, h, stream, take{N: 7}, command.WithID(first))
			for range command.SnapshotCommands + 50 {
				mustHandle(t, h, stream, take{N: 1}, command.WithID(uuid.New()))
			}
			before := streamLen(t, s, stream)
			res := mustHandle(t, h, stream, take{N: 7}, command.WithID(first))
			if !res.Repeated || res.NextExpected != want.NextExpected || res.FirstPosition != want.FirstPosition || len(res.Events) != 1 {
				t.Fatalf("repeat beyond the window: %+v, want %+v", res, want)
			}
			if streamLen(t, s, stream) != before {
				t.Fatal("the repeat wrote")
			}
		})
	}
}
