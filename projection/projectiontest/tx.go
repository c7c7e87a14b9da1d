package projectiontest

import (
	"context"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

func (s *suite[M]) txCases() []testCase[M] {
	return []testCase[M]{
		{"CommitShowsAllTogether", s.testCommitShows},
		{"RollbackDiscardsAll", s.testRollbackDiscards},
		{"RollbackAfterCommitKeeps", s.testRollbackAfterCommit},
		{"SlotsApart", s.testSlotsApart},
	}
}

// A transaction reads its own model writes; its checkpoint and parked
// events show to the target's readers at Commit, not before, and its
// model to the next transaction.
func (s *suite[M]) testCommitShows(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	s.put(t, ctx, tx, "k", "v1")
	wantValue(t, "inside the transaction", s.value(t, ctx, tx, "k"), "v1")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 5, Parked: 1})
	check(t, "Park", tx.Park(ctx, parkedAt(5)))
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{})
	wantParked(t, ctx, target, "p", 0, nil)
	commit(t, ctx, tx)

	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 5, Parked: 1})
	wantParked(t, ctx, target, "p", 0, []projection.ParkedEvent{parkedAt(5)})
	wantValue(t, "after Commit", s.committedValue(t, ctx, target, "p", "k"), "v1")
}

// Rollback discards the model writes, the checkpoint and the parked
// events at once.
func (s *suite[M]) testRollbackDiscards(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	s.put(t, ctx, tx, "k", "v1")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 5, Parked: 1})
	check(t, "Park", tx.Park(ctx, parkedAt(5)))
	rollback(t, ctx, tx)

	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{})
	wantParked(t, ctx, target, "p", 0, nil)
	wantValue(t, "after Rollback", s.committedValue(t, ctx, target, "p", "k"), "")
	// The checkpoint is still at 0: the next writer saves from there.
	tx = begin(t, ctx, target, "p")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 6})
	commit(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 6})
}

// Rollback after Commit does nothing (a deferred Rollback is the usual
// shape of a handler's transaction).
func (s *suite[M]) testRollbackAfterCommit(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	s.put(t, ctx, tx, "k", "v1")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 3})
	commit(t, ctx, tx)
	rollback(t, ctx, tx)
	rollback(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 3})
	wantValue(t, "after Commit then Rollback", s.committedValue(t, ctx, target, "p", "k"), "v1")
}

// Each slot has its own model, checkpoint and parked events.
func (s *suite[M]) testSlotsApart(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "a")
	s.put(t, ctx, tx, "k", "in-a")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 4, Parked: 1})
	check(t, "Park", tx.Park(ctx, parkedAt(4)))
	commit(t, ctx, tx)

	wantValue(t, "slot b", s.committedValue(t, ctx, target, "b", "k"), "")
	wantCheckpoint(t, ctx, target, "b", projection.Checkpoint{})
	wantParked(t, ctx, target, "b", 0, nil)
	tx = begin(t, ctx, target, "b")
	s.put(t, ctx, tx, "k", "in-b")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 9})
	commit(t, ctx, tx)
	wantValue(t, "slot a", s.committedValue(t, ctx, target, "a", "k"), "in-a")
	wantCheckpoint(t, ctx, target, "a", projection.Checkpoint{Position: 4, Parked: 1})
}

func (s *suite[M]) checkpointCases() []testCase[M] {
	return []testCase[M]{
		{"FirstFromZero", s.testFirstFromZero},
		{"MovedRefused", s.testCheckpointMoved},
		{"MovedByConcurrentWriter", s.testConcurrentWriter},
		{"SavedTwiceInOneTx", s.testSavedTwice},
	}
}

// The first checkpoint of a slot is saved from position 0, and from no
// other.
func (s *suite[M]) testFirstFromZero(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	wantErrIs(t, "SaveCheckpoint from 7 on a fresh slot", tx.SaveCheckpoint(ctx, 7, projection.Checkpoint{Position: 8}), projection.ErrCheckpointMoved)
	rollback(t, ctx, tx)
	tx = begin(t, ctx, target, "p")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 8, Parked: 2})
	commit(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 8, Parked: 2})
}

// A checkpoint is saved only from the position stored: from any other,
// ErrCheckpointMoved, and the rolled-back transaction changes nothing.
func (s *suite[M]) testCheckpointMoved(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 5})
	commit(t, ctx, tx)
	for _, prev := range []annals.Position{0, 4, 6} {
		tx := begin(t, ctx, target, "p")
		s.put(t, ctx, tx, "k", "stale")
		err := tx.SaveCheckpoint(ctx, prev, projection.Checkpoint{Position: 7})
		wantErrIs(t, "SaveCheckpoint from a position not stored", err, projection.ErrCheckpointMoved)
		rollback(t, ctx, tx)
	}
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 5})
	wantValue(t, "after the refused saves", s.committedValue(t, ctx, target, "p", "k"), "")
	tx = begin(t, ctx, target, "p")
	save(t, ctx, tx, 5, projection.Checkpoint{Position: 9, Parked: 1})
	commit(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 9, Parked: 1})
}

// Two writers from the same position: the second fails with
// ErrCheckpointMoved once the first commits, whether the target makes it
// wait at Begin (one transaction at a time) or at SaveCheckpoint (a row
// lock).
func (s *suite[M]) testConcurrentWriter(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	first := begin(t, ctx, target, "p")
	save(t, ctx, first, 0, projection.Checkpoint{Position: 1})
	second := make(chan error, 1)
	go func() {
		tx, err := target.Begin(ctx, "p")
		if err != nil {
			second <- err
			return
		}
		defer tx.Rollback(context.Background())
		second <- tx.SaveCheckpoint(ctx, 0, projection.Checkpoint{Position: 2})
	}()
	commit(t, ctx, first)
	select {
	case err := <-second:
		wantErrIs(t, "the second writer's SaveCheckpoint", err, projection.ErrCheckpointMoved)
	case <-ctx.Done():
		t.Fatal("the second writer did not finish")
	}
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 1})
}

// A transaction that saved a checkpoint reads it back as stored: a second
// save in it goes from the first one's position (the transaction sees its
// own writes, as its model does).
func (s *suite[M]) testSavedTwice(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "p")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 3})
	save(t, ctx, tx, 3, projection.Checkpoint{Position: 4})
	commit(t, ctx, tx)
	wantCheckpoint(t, ctx, target, "p", projection.Checkpoint{Position: 4})
}

func (s *suite[M]) unknownCases() []testCase[M] {
	return []testCase[M]{{"NeverWritten", s.testUnknown}}
}

// A name never written has the zero checkpoint, no parked events and
// generation 0, without an error; so has a name only rolled back.
func (s *suite[M]) testUnknown(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	tx := begin(t, ctx, target, "rolled-back")
	save(t, ctx, tx, 0, projection.Checkpoint{Position: 1})
	rollback(t, ctx, tx)
	for _, name := range []string{"never", "rolled-back"} {
		wantCheckpoint(t, ctx, target, name, projection.Checkpoint{})
		wantParked(t, ctx, target, name, 0, nil)
		wantGeneration(t, ctx, target, name, 0)
	}
}
