package projectiontest

import (
	"context"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
	"github.com/google/uuid"
)

func (s *suite[M]) parkedCases() []testCase[M] {
	return []testCase[M]{
		{"ListedOldestFirst", s.testParkedListed},
		{"CountedInTheSameTx", s.testParkedCounted},
		{"Unpark", s.testUnpark},
		{"Clear", s.testClearParked},
		{"ClearThenParkInOneTx", s.testClearThenPark},
		{"ParkThenUnparkInOneTx", s.testParkThenUnpark},
	}
}

// parkedEpoch is the parked time of parkedAt(0); whole microseconds, as
// every target keeps them.
var parkedEpoch = time.Date(2026, 1, 2, 3, 4, 5, 678000, time.UTC)

// parkedAt is the parked event of position pos, every field set.
func parkedAt(pos annals.Position) projection.ParkedEvent {
	var id uuid.UUID
	id[0], id[15] = 0xa0, byte(pos)
	return projection.ParkedEvent{
		Position: pos, EventID: id, Stream: "order-1", Type: "OrderPlaced",
		Error: "boom", Attempts: 3, ParkedAt: parkedEpoch.Add(time.Duration(pos) * time.Second),
	}
}

func parkedList(positions ...annals.Position) []projection.ParkedEvent {
	var out []projection.ParkedEvent
	for _, p := range positions {
		out = append(out, parkedAt(p))
	}
	return out
}

func (s *suite[M]) park(t *testing.T, ctx context.Context, tx projection.Tx[M], positions ...annals.Position) {
	t.Helper()
	for _, p := range positions {
		check(t, "Park", tx.Park(ctx, parkedAt(p)))
	}
}

func wantParked[M any](t *testing.T, ctx context.Context, target projection.Target[M], slot string, limit int, want []projection.ParkedEvent) {
	t.Helper()
	got, err := target.ParkedEvents(ctx, slot, limit)
	if err != nil {
		t.Fatalf("ParkedEvents(%q, %d): %v", slot, limit, err)
	}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.Position == w.Position && g.EventID == w.EventID && g.Stream == w.Stream && g.Type == w.Type &&
			g.Error == w.Error && g.Attempts == w.Attempts && g.ParkedAt.Equal(w.ParkedAt)
	}
	if !same {
		t.Fatalf("ParkedEvents(%q, %d) =\n%+v\nwant\n%+v", slot, limit, got, want)
	}
}

// Parked events show at Commit, every field kept, oldest first, at most
// limit of them (0: up to MaxParkedListed).
func (s *suite[M]) testParkedListed(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	s.park(t, ctx, tx, 2, 4)
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 4, Parked: 2})
	commit(t, ctx, tx)
	tx = begin(t, ctx, target, "p")
	s.park(t, ctx, tx, 6)
	wantParked(t, ctx, target, "p", 0, parkedList(2, 4))
	save(t, ctx, tx, 4, projection.Checkpoint{Position: 6, Parked: 3})
	commit(t, ctx, tx)

	wantParked(t, ctx, target, "p", 0, parkedList(2, 4, 6))
	wantParked(t, ctx, target, "p", 2, parkedList(2, 4))
	wantParked(t, ctx, target, "p", projection.MaxParkedListed+1, parkedList(2, 4, 6))
	wantParked(t, ctx, target, "other", 0, nil)
}

// The count of parked events is the checkpoint's, saved in the
// transaction that parks: both show, or neither.
func (s *suite[M]) testParkedCounted(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	s.park(t, ctx, tx, 3)
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 3, Parked: 1})
	rollback(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{})
	wantParked(t, ctx, target, "p", 0, nil)

	tx = begin(t, ctx, target, "p")
	s.park(t, ctx, tx, 3)
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 3, Parked: 1})
	commit(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 3, Parked: 1})
	wantParked(t, ctx, target, "p", 0, parkedList(3))
}

// Unpark forgets one parked event, in the transaction that counts it.
func (s *suite[M]) testUnpark(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	s.parkCommitted(t, ctx, target, 2, 4, 6)
	tx := begin(t, ctx, target, "p")
	check(t, "Unpark", tx.Unpark(ctx, 4))
	check(t, "Unpark of a position not parked", tx.Unpark(ctx, 5))
	save(t, ctx, tx, 6, projection.Checkpoint{Position: 6, Parked: 2})
	wantParked(t, ctx, target, "p", 0, parkedList(2, 4, 6))
	commit(t, ctx, tx)
	wantParked(t, ctx, target, "p", 0, parkedList(2, 6))
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 6, Parked: 2})
}

// ClearParked forgets the slot's parked events, not another slot's.
func (s *suite[M]) testClearParked(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	s.parkCommitted(t, ctx, target, 2, 4)
	tx := begin(t, ctx, target, "other")
	s.park(t, ctx, tx, 9)
	commit(t, ctx, tx)
	tx = begin(t, ctx, target, "p")
	check(t, "ClearParked", tx.ClearParked(ctx))
	save(t, ctx, tx, 4, projection.Checkpoint{Position: 4})
	commit(t, ctx, tx)
	wantParked(t, ctx, target, "p", 0, nil)
	wantParked(t, ctx, target, "other", 0, parkedList(9))
}

// Operations on parked events take effect in their order in the
// transaction: a Park after ClearParked stays.
func (s *suite[M]) testClearThenPark(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	s.parkCommitted(t, ctx, target, 2)
	tx := begin(t, ctx, target, "p")
	check(t, "ClearParked", tx.ClearParked(ctx))
	s.park(t, ctx, tx, 5)
	commit(t, ctx, tx)
	wantParked(t, ctx, target, "p", 0, parkedList(5))
}

// ... and an Unpark after a Park of the same position forgets it.
func (s *suite[M]) testParkThenUnpark(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	s.park(t, ctx, tx, 3, 4)
	check(t, "Unpark", tx.Unpark(ctx, 3))
	commit(t, ctx, tx)
	wantParked(t, ctx, target, "p", 0, parkedList(4))
}

// parkCommitted parks positions in slot "p", checkpoint at the last.
func (s *suite[M]) parkCommitted(t *testing.T, ctx context.Context, target projection.Target[M], positions ...annals.Position) {
	t.Helper()
	tx := begin(t, ctx, target, "p")
	s.park(t, ctx, tx, positions...)
	save(t, ctx, tx, 0, projection.Checkpoint{Position: positions[len(positions)-1], Parked: uint64(len(positions))})
	commit(t, ctx, tx)
}
