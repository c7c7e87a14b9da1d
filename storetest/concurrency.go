package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

func exerciseConcurrency(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"OptimisticRetryLoop", testConcurrentRetryLoop},
		{"SameExpectedOneWinner", testConcurrentOneWinner},
		{"SubscribersUnderConcurrentWriters", testConcurrentSubscribers},
	})
}

type racedEvent struct {
	G int `json:"g"`
	I int `json:"i"`
}

// testConcurrentRetryLoop races writers on one stream, each reading the
// stream's tail, deciding, and appending with Exact, retrying on conflict.
func testConcurrentRetryLoop(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const writers, perWriter = 64, 10
	const stream = "raced-1"

	type win struct {
		g, i     int
		id       uuid.UUID
		revision annals.Revision
		position annals.Position
	}
	var (
		mu        sync.Mutex
		wins      []win
		conflicts int
		wg        sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			<-start
			for i := 0; i < perWriter; {
				expected := annals.NoStream
				tail, err := readStream(ctx, s, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1})
				switch {
				case errors.Is(err, annals.ErrStreamNotFound):
				case err != nil:
					t.Errorf("writer %d: reading the tail: %v", g, err)
					return
				case len(tail) != 1:
					t.Errorf("writer %d: tail read returned %d events", g, len(tail))
					return
				default:
					expected = annals.Exact(tail[0].Revision)
				}
				data, _ := json.Marshal(racedEvent{G: g, I: i})
				id := uuid.New()
				res, err := s.Append(ctx, stream, expected, annals.EventData{ID: id, Type: "Raced", Data: data})
				if errors.Is(err, annals.ErrWrongExpectedRevision) {
					var w *annals.WrongExpectedRevisionError
					if !errors.As(err, &w) || w.Expected != expected || w.Actual == expected {
						t.Errorf("writer %d: bad conflict error %v for expected %v", g, err, expected)
						return
					}
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("writer %d: append: %v", g, err)
					return
				}
				r, ok := res.NextExpected.Revision()
				if !ok || res.FirstPosition != res.LastPosition {
					t.Errorf("writer %d: bad result %+v", g, res)
					return
				}
				want := annals.Revision(0)
				if e, exact := expected.Revision(); exact {
					want = e + 1
				}
				if r != want {
					t.Errorf("writer %d: appended at revision %d with expected %v", g, r, expected)
				}
				mu.Lock()
				wins = append(wins, win{g, i, id, r, res.LastPosition})
				mu.Unlock()
				i++
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	got := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
	const total = writers * perWriter
	if len(wins) != total {
		t.Fatalf("%d successful appends, want %d", len(wins), total)
	}
	wantRevisions(t, "raced stream", got, seq(0, total-1))
	byRevision := map[annals.Revision]win{}
	for _, w := range wins {
		if prev, dup := byRevision[w.revision]; dup {
			t.Fatalf("revision %d won by both writer %d and writer %d", w.revision, prev.g, w.g)
		}
		byRevision[w.revision] = w
	}
	seen := map[racedEvent]bool{}
	for _, e := range got {
		w, ok := byRevision[e.Revision]
		if !ok {
			t.Fatalf("revision %d has no winner", e.Revision)
		}
		if e.ID != w.id || e.Position != w.position {
			t.Fatalf("revision %d holds event %s at %d, but writer %d was told it wrote %s at %d", e.Revision, e.ID, e.Position, w.g, w.id, w.position)
		}
		var r racedEvent
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatalf("revision %d: data %q: %v", e.Revision, e.Data, err)
		}
		if r != (racedEvent{w.g, w.i}) {
			t.Fatalf("revision %d holds %+v, want writer %d's event %d", e.Revision, r, w.g, w.i)
		}
		if seen[r] {
			t.Fatalf("event %+v recorded twice", r)
		}
		seen[r] = true
	}
	if n := countAll(t, ctx, s); n != total {
		t.Fatalf("$all has %d events, want %d: failed appends wrote", n, total)
	}
	t.Logf("%d appends won, %d conflicts", total, conflicts)
}

// testConcurrentOneWinner races writers that all expect the same state.
func testConcurrentOneWinner(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const writers = 64
	mustAppend(t, ctx, s, "one-1", annals.NoStream, ev("First"))
	for _, c := range []struct {
		stream   string
		expected annals.ExpectedRevision
		actual   annals.ExpectedRevision // after the winner
	}{
		{"one-1", annals.Exact(0), annals.Exact(2)},
		{"one-2", annals.NoStream, annals.Exact(1)},
	} {
		var (
			mu      sync.Mutex
			winners []uuid.UUID
			wg      sync.WaitGroup
		)
		start := make(chan struct{})
		for g := range writers {
			wg.Go(func() {
				<-start
				in := []annals.EventData{ev("Racer"), ev("Racer")}
				_, err := s.Append(ctx, c.stream, c.expected, in...)
				if err == nil {
					mu.Lock()
					winners = append(winners, in[0].ID)
					mu.Unlock()
					return
				}
				var w *annals.WrongExpectedRevisionError
				if !errors.As(err, &w) || w.Stream != c.stream || w.Expected != c.expected || w.Actual != c.actual {
					t.Errorf("writer %d on %s: error %v, want WrongExpectedRevisionError with actual %v", g, c.stream, err, c.actual)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%s with %v: %d writers won, want exactly 1", c.stream, c.expected, len(winners))
		}
		got := mustReadStream(t, ctx, s, c.stream, annals.ReadStreamOptions{})
		a, _ := c.actual.Revision()
		wantRevisions(t, c.stream, got, seq(0, uint64(a)))
		if got[len(got)-2].ID != winners[0] {
			t.Fatalf("%s: the stream holds events of a writer that was told it lost", c.stream)
		}
	}
	if n := countAll(t, ctx, s); n != 5 {
		t.Fatalf("$all has %d events, want 5", n)
	}
}

// testConcurrentSubscribers checks that subscriptions running while many
// writers append deliver every event exactly once, in order.
func testConcurrentSubscribers(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const writers, perWriter, streams = 8, 500, 4
	streamName := func(i int) string { return fmt.Sprintf("conc-%d", i) }
	const endType = "End"

	type result struct {
		events []annals.Event
		err    error
	}
	var subs []<-chan result
	ready := make(chan struct{}, 8)
	// $all subscribers stop after the End event of every stream; stream
	// subscribers after the End event of their stream.
	run := func(msgs func(yield func(annals.Message, error) bool), ends int) <-chan result {
		out := make(chan result, 1)
		go func() {
			var r result
			seen, caughtUp := 0, false
			defer func() {
				if !caughtUp {
					ready <- struct{}{} // failed early: let the test see why
				}
				out <- r
			}()
			for m, err := range msgs {
				if err != nil {
					r.err = err
					break
				}
				switch m.Kind {
				case annals.MessageCaughtUp:
					if !caughtUp {
						caughtUp = true
						ready <- struct{}{}
					}
					continue
				case annals.MessageEvent:
				default:
					r.err = fmt.Errorf("unexpected %s message", kindName(m.Kind))
				}
				if r.err != nil {
					break
				}
				r.events = append(r.events, m.Event)
				if m.Event.Type == endType {
					if seen++; seen == ends {
						break
					}
				}
			}
		}()
		return out
	}
	for range 3 {
		subs = append(subs, run(s.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: annals.Start}), streams))
	}
	for i := range 2 {
		subs = append(subs, run(s.SubscribeToStream(ctx, streamName(i), annals.SubscribeStreamOptions{From: annals.Start}), 1))
	}
	for range subs {
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatalf("subscribers did not catch up: %v", ctx.Err())
		}
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i, n := 0, 0; n < perWriter; i++ {
				size := min(1+i%9, perWriter-n)
				in := make([]annals.EventData, size)
				for k := range in {
					in[k] = evData("Written", fmt.Sprintf(`{"w":%d,"n":%d}`, w, n+k))
				}
				if _, err := s.Append(ctx, streamName((w+i)%streams), annals.Any, in...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				n += size
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range streams {
		mustAppend(t, ctx, s, streamName(i), annals.StreamExists, ev(endType))
	}

	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != writers*perWriter+streams {
		t.Fatalf("$all has %d events, want %d", len(all), writers*perWriter+streams)
	}
	wantPositions(t, "$all", all, seq(1, uint64(len(all))))
	for k, ch := range subs {
		var r result
		select {
		case r = <-ch:
		case <-ctx.Done():
			t.Fatalf("subscriber %d did not finish: %v", k, ctx.Err())
		}
		if r.err != nil {
			t.Fatalf("subscriber %d: %v", k, r.err)
		}
		want := all
		what := fmt.Sprintf("$all subscriber %d", k)
		if k >= 3 {
			stream := streamName(k - 3)
			want = mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
			what = "subscriber of " + stream
			wantRevisions(t, what, r.events, seq(0, uint64(len(want)-1)))
		}
		if !slices.Equal(ids(r.events), ids(want)) {
			got, wantPos := positions(r.events), positions(want)
			t.Fatalf("%s: got %d events, want %d; first difference at %d", what, len(got), len(wantPos), firstDiff(got, wantPos))
		}
		wantSameEvents(t, what, r.events, want)
	}
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
