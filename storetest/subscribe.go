package storetest

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/annals/annals"
)

func exerciseSubscribe(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"AllFromStart", testSubAllFromStart},
		{"AllFromPosition", testSubAllFromPosition},
		{"AllFromEnd", testSubAllFromEnd},
		{"StreamFromStart", testSubStreamFromStart},
		{"StreamFromRevision", testSubStreamFromRevision},
		{"StreamFromEnd", testSubStreamFromEnd},
		{"StreamNotYetCreated", testSubStreamNotYetCreated},
		{"StreamSurvivesSoftDelete", testSubStreamSoftDelete},
		{"FilteredCheckpoints", testSubFilteredCheckpoints},
		{"ContextCancel", testSubContextCancel},
		{"TombstoneEndsStreamSubscription", testSubTombstone},
		{"CloseEndsSubscriptions", testSubClose},
		{"BreakEarly", testSubBreakEarly},
	})
}

// wantSameEvents checks that got are the events want, in order, comparing
// the fields a subscription must carry.
func wantSameEvents(t *testing.T, what string, got, want []annals.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Stream != w.Stream || g.Type != w.Type || g.Revision != w.Revision || g.Position != w.Position ||
			string(g.Data) != string(w.Data) || !g.Recorded.Equal(w.Recorded) {
			t.Fatalf("%s: event %d is %s@%d (position %d, id %s), want %s@%d (position %d, id %s)",
				what, i, g.Stream, g.Revision, g.Position, g.ID, w.Stream, w.Revision, w.Position, w.ID)
		}
	}
}

func testSubAllFromStart(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(3, "Before")...)
	mustAppend(t, ctx, s, "s-2", annals.NoStream, evs(2, "Before")...)
	history := mustReadAll(t, ctx, s, annals.ReadAllOptions{})

	sub := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{From: annals.Start})
	wantSameEvents(t, "history", sub.events(t, 5), history)
	if cu := sub.nextKind(t, annals.MessageCaughtUp); cu.Position != 5 {
		t.Fatalf("caught up at position %d, want 5", cu.Position)
	}
	mustAppend(t, ctx, s, "s-1", annals.Exact(2), evs(2, "After")...)
	mustAppend(t, ctx, s, "s-3", annals.NoStream, ev("After"))
	live := mustReadAll(t, ctx, s, annals.ReadAllOptions{From: 6})
	wantSameEvents(t, "live", sub.events(t, 3), live)
}

func testSubAllFromPosition(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(5, "Before")...)
	sub := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{From: 3})
	wantPositions(t, "from position 3", sub.events(t, 3), seq(3, 5))
	if cu := sub.nextKind(t, annals.MessageCaughtUp); cu.Position != 5 {
		t.Fatalf("caught up at position %d, want 5", cu.Position)
	}
	mustAppend(t, ctx, s, "s-2", annals.NoStream, ev("After"))
	wantPositions(t, "live", sub.events(t, 1), []uint64{6})

	// From the next position to be written: nothing, then exactly it.
	sub2 := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{From: 7})
	sub2.nextKind(t, annals.MessageCaughtUp)
	mustAppend(t, ctx, s, "s-2", annals.Exact(0), ev("After"))
	wantPositions(t, "from the next position", sub2.events(t, 1), []uint64{7})
}

func testSubAllFromEnd(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(5, "Before")...)
	sub := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{From: annals.End})
	sub.nextKind(t, annals.MessageCaughtUp) // no history before it
	mustAppend(t, ctx, s, "s-1", annals.Exact(4), evs(2, "After")...)
	got := sub.events(t, 2)
	wantPositions(t, "from End", got, seq(6, 7))
	for _, e := range got {
		if e.Type != "After" {
			t.Fatalf("from End delivered a %q event", e.Type)
		}
	}
}

func testSubStreamFromStart(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(2, "Before")...)
	mustAppend(t, ctx, s, "other-1", annals.NoStream, evs(2, "Noise")...)
	mustAppend(t, ctx, s, "s-1", annals.Exact(1), ev("Before"))
	history := mustReadStream(t, ctx, s, "s-1", annals.ReadStreamOptions{})

	sub := subscribeStream(t, ctx, s, "s-1", annals.SubscribeStreamOptions{From: annals.Start})
	wantSameEvents(t, "history", sub.events(t, 3), history)
	sub.nextKind(t, annals.MessageCaughtUp)
	mustAppend(t, ctx, s, "other-1", annals.Any, evs(3, "Noise")...)
	mustAppend(t, ctx, s, "s-1", annals.Exact(2), evs(2, "After")...)
	mustAppend(t, ctx, s, "other-1", annals.Any, evs(3, "Noise")...)
	mustAppend(t, ctx, s, "s-1", annals.Exact(4), ev("After"))
	live := mustReadStream(t, ctx, s, "s-1", annals.ReadStreamOptions{From: 3})
	wantSameEvents(t, "live", sub.events(t, 3), live)
}

func testSubStreamFromRevision(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(4, "Before")...)
	sub := subscribeStream(t, ctx, s, "s-1", annals.SubscribeStreamOptions{From: 2})
	wantRevisions(t, "from revision 2", sub.events(t, 2), seq(2, 3))
	sub.nextKind(t, annals.MessageCaughtUp)
	mustAppend(t, ctx, s, "s-1", annals.Exact(3), ev("After"))
	wantRevisions(t, "live", sub.events(t, 1), []uint64{4})
}

func testSubStreamFromEnd(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(4, "Before")...)
	sub := subscribeStream(t, ctx, s, "s-1", annals.SubscribeStreamOptions{From: annals.End})
	sub.nextKind(t, annals.MessageCaughtUp)
	mustAppend(t, ctx, s, "other-1", annals.NoStream, ev("Noise"))
	mustAppend(t, ctx, s, "s-1", annals.Exact(3), evs(2, "After")...)
	got := sub.events(t, 2)
	wantRevisions(t, "from End", got, seq(4, 5))
	for _, e := range got {
		if e.Stream != "s-1" || e.Type != "After" {
			t.Fatalf("from End delivered %s %q", e.Stream, e.Type)
		}
	}
}

func testSubStreamNotYetCreated(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	for i, from := range []annals.Revision{annals.Start, annals.End} {
		stream := "later-" + strconv.Itoa(i)
		sub := subscribeStream(t, ctx, s, stream, annals.SubscribeStreamOptions{From: from})
		sub.nextKind(t, annals.MessageCaughtUp)
		mustAppend(t, ctx, s, "other-1", annals.Any, ev("Noise"))
		mustAppend(t, ctx, s, stream, annals.NoStream, evs(2, "Created")...)
		mustAppend(t, ctx, s, stream, annals.Exact(1), ev("More"))
		got := sub.events(t, 3)
		wantRevisions(t, "stream created after subscribing (from "+optString(annals.ReadStreamOptions{From: from})+")", got, seq(0, 2))
		wantSameEvents(t, "created stream", got, mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{}))
	}
}

func testSubStreamSoftDelete(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	sub := subscribeStream(t, ctx, s, "sd-1", annals.SubscribeStreamOptions{From: annals.Start})
	sub.nextKind(t, annals.MessageCaughtUp)
	mustAppend(t, ctx, s, "sd-1", annals.NoStream, evs(2, "Before")...)
	wantRevisions(t, "before Delete", sub.events(t, 2), seq(0, 1))
	if _, err := s.Delete(ctx, "sd-1", annals.Exact(1)); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustAppend(t, ctx, s, "sd-1", annals.NoStream, ev("After"))
	got := sub.events(t, 1)
	wantRevisions(t, "after Delete and re-creation", got, []uint64{2})
	if got[0].Type != "After" {
		t.Fatalf("after re-creation delivered a %q event", got[0].Type)
	}
}

func testSubFilteredCheckpoints(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const interval, noise, batch = 100, 1500, 500
	appendNoise := func() {
		for i := 0; i < noise; i += batch {
			mustAppend(t, ctx, s, "noise-"+strconv.Itoa(i), annals.Any, evs(batch, "Noise")...)
		}
	}
	mustAppend(t, ctx, s, "wanted-1", annals.NoStream, ev("Wanted"))
	appendNoise()

	sub := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{
		From:                  annals.Start,
		Filter:                annals.EventTypePrefixFilter("Wanted"),
		CheckpointEveryEvents: interval,
	})
	// progress holds the positions of events and checkpoints, in order.
	progress := []annals.Position{0}
	checkpoints := 0
	take := func(m annals.Message) {
		t.Helper()
		var p annals.Position
		switch m.Kind {
		case annals.MessageEvent:
			if m.Event.Type != "Wanted" {
				t.Fatalf("filtered subscription delivered a %q event", m.Event.Type)
			}
			p = m.Event.Position
		case annals.MessageCheckpoint:
			checkpoints++
			p = m.Position
		default:
			t.Fatalf("unexpected %s message", kindName(m.Kind))
		}
		// A checkpoint may repeat the position of the event before it.
		if prev := progress[len(progress)-1]; p < prev || p == prev && m.Kind == annals.MessageEvent {
			t.Fatalf("%s at position %d after progress at %d: positions must increase", kindName(m.Kind), p, prev)
		}
		progress = append(progress, p)
	}

	// History: the wanted event, then checkpoints over the noise.
	if e := sub.nextKind(t, annals.MessageEvent).Event; e.Position != 1 {
		t.Fatalf("first event at position %d, want 1", e.Position)
	}
	progress = append(progress, 1)
	for {
		it := sub.next(t)
		if it.err != nil {
			t.Fatalf("subscription: %v", it.err)
		}
		if it.msg.Kind == annals.MessageCaughtUp {
			if it.msg.Position != 1+noise {
				t.Fatalf("caught up at %d, want %d", it.msg.Position, 1+noise)
			}
			break
		}
		take(it.msg)
	}
	if min := noise/interval - 1; checkpoints < min {
		t.Fatalf("%d checkpoints over %d filtered events with interval %d, want at least %d", checkpoints, noise, interval, min)
	}

	// Live: more noise, then a wanted event.
	historic := checkpoints
	appendNoise()
	res := mustAppend(t, ctx, s, "wanted-1", annals.Exact(0), ev("Wanted"))
	for {
		it := sub.next(t)
		if it.err != nil {
			t.Fatalf("subscription: %v", it.err)
		}
		take(it.msg)
		if it.msg.Kind == annals.MessageEvent {
			if it.msg.Event.Position != res.LastPosition {
				t.Fatalf("live wanted event at position %d, want %d", it.msg.Event.Position, res.LastPosition)
			}
			break
		}
		if it.msg.Position >= res.LastPosition {
			t.Fatalf("checkpoint at %d, past the last filtered event %d", it.msg.Position, res.LastPosition-1)
		}
	}
	if live, min := checkpoints-historic, noise/interval-1; live < min {
		t.Fatalf("%d live checkpoints over %d filtered events with interval %d, want at least %d", live, noise, interval, min)
	}
	// No more than interval filtered events pass without a message.
	for i := 1; i < len(progress); i++ {
		if gap := progress[i] - progress[i-1]; gap > interval+1 {
			t.Fatalf("progress jumped from position %d to %d: more than %d filtered events without a checkpoint", progress[i-1], progress[i], interval)
		}
	}
	if last := progress[len(progress)-1]; last != res.LastPosition {
		t.Fatalf("progress ends at %d, want %d", last, res.LastPosition)
	}
}

func testSubContextCancel(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(3, "Before")...)
	all := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{})
	filtered := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{Filter: annals.StreamPrefixFilter("s-")})
	stream := subscribeStream(t, ctx, s, "s-1", annals.SubscribeStreamOptions{})
	for _, sub := range []*subscription{all, filtered, stream} {
		sub.events(t, 3)
		sub.nextKind(t, annals.MessageCaughtUp)
		sub.cancel()
		sub.wantErr(t, context.Canceled)
	}
	// A context that ends while history is still being delivered.
	mustAppend(t, ctx, s, "s-1", annals.Exact(2), evs(1000, "More")...)
	sub := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{})
	sub.events(t, 10)
	sub.cancel()
	for {
		it := sub.next(t)
		if it.err != nil {
			wantErrIs(t, "subscription cancelled during history", it.err, context.Canceled)
			break
		}
	}
}

func testSubTombstone(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "ts-1", annals.NoStream, ev("Before"))
	stream := subscribeStream(t, ctx, s, "ts-1", annals.SubscribeStreamOptions{})
	all := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{})
	stream.events(t, 1)
	stream.nextKind(t, annals.MessageCaughtUp)
	all.events(t, 1)
	all.nextKind(t, annals.MessageCaughtUp)
	mustAppend(t, ctx, s, "ts-1", annals.Exact(0), ev("Live"))
	wantRevisions(t, "live", stream.events(t, 1), []uint64{1})
	dr, err := s.Tombstone(ctx, "ts-1", annals.Any)
	if err != nil {
		t.Fatalf("Tombstone: %v", err)
	}
	stream.wantErr(t, annals.ErrStreamDeleted)

	// $all goes on, and shows the tombstone.
	got := all.events(t, 2)
	if got[1].Type != annals.EventTypeStreamDeleted || got[1].Stream != "ts-1" || got[1].Position != dr.Position {
		t.Fatalf("$all subscription: %+v after the tombstone, want the %s event", got[1], annals.EventTypeStreamDeleted)
	}
	mustAppend(t, ctx, s, "ts-2", annals.NoStream, ev("After"))
	all.events(t, 1)

	// Subscribing to a tombstoned stream fails at once.
	for _, from := range []annals.Revision{annals.Start, 1, annals.End} {
		late := subscribeStream(t, ctx, s, "ts-1", annals.SubscribeStreamOptions{From: from})
		for {
			it := late.next(t)
			if it.err != nil {
				wantErrIs(t, "subscribing to a tombstoned stream", it.err, annals.ErrStreamDeleted)
				break
			}
			if it.msg.Kind == annals.MessageEvent {
				t.Fatalf("subscription to a tombstoned stream delivered %+v", it.msg.Event)
			}
		}
	}
}

func testSubClose(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(2, "Before")...)
	all := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{})
	filtered := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{Filter: annals.StreamPrefixFilter("s-")})
	stream := subscribeStream(t, ctx, s, "s-1", annals.SubscribeStreamOptions{})
	waiting := subscribeStream(t, ctx, s, "missing-1", annals.SubscribeStreamOptions{})
	for _, sub := range []*subscription{all, filtered, stream} {
		sub.events(t, 2)
		sub.nextKind(t, annals.MessageCaughtUp)
	}
	waiting.nextKind(t, annals.MessageCaughtUp)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, sub := range []*subscription{all, filtered, stream, waiting} {
		sub.wantErr(t, annals.ErrClosed)
	}
}

func testSubBreakEarly(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "s-1", annals.NoStream, evs(600, "Many")...)
	// Break in the middle of history.
	n := 0
	for m, err := range s.SubscribeToAll(ctx, annals.SubscribeAllOptions{}) {
		if err != nil {
			t.Fatalf("SubscribeToAll: %v", err)
		}
		if m.Kind != annals.MessageEvent {
			t.Fatalf("unexpected %s message", kindName(m.Kind))
		}
		if n++; n == 300 {
			break
		}
	}
	// Break once caught up.
	var got []annals.Event
	for m, err := range s.SubscribeToStream(ctx, "s-1", annals.SubscribeStreamOptions{From: 550}) {
		if err != nil {
			t.Fatalf("SubscribeToStream: %v", err)
		}
		if m.Kind == annals.MessageCaughtUp {
			break
		}
		got = append(got, m.Event)
	}
	wantRevisions(t, "stream subscription from 550", got, seq(550, 599))
	// The store still works.
	mustAppend(t, ctx, s, "s-1", annals.Exact(599), ev("After"))
	sub := subscribeAll(t, ctx, s, annals.SubscribeAllOptions{From: 601})
	if e := sub.events(t, 1); e[0].Type != "After" {
		t.Fatalf("subscription after abandoned ones delivered a %q event", e[0].Type)
	}
	if !slices.Equal(positions(mustReadAll(t, ctx, s, annals.ReadAllOptions{From: 600})), []uint64{600, 601}) {
		t.Fatalf("ReadAll after abandoned subscriptions is wrong")
	}
}
