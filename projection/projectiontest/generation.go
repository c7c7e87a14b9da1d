package projectiontest

import (
	"context"
	"fmt"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
)

func (s *suite[M]) generationCases() []testCase[M] {
	return []testCase[M]{
		{"SwitchDropsTheOld", s.testSwitch},
		{"SwitchMovedRefused", s.testSwitchMoved},
		{"DropRefusesActive", s.testDropActive},
		{"DropRebuild", s.testDropRebuild},
		{"PerName", s.testGenerationPerName},
	}
}

// fill writes a model value, a checkpoint and a parked event to slot,
// each telling which slot it is: pos is the checkpoint's position and the
// parked event's.
func (s *suite[M]) fill(t *testing.T, ctx context.Context, target projection.Target[M], slot string, pos annals.Position) {
	t.Helper()
	tx := begin(t, ctx, target, slot)
	s.put(t, ctx, tx, "k", fmt.Sprintf("v%d", pos))
	s.park(t, ctx, tx, pos)
	save(t, ctx, tx, 0, projection.Checkpoint{Position: pos, Parked: 1})
	commit(t, ctx, tx)
}

// wantFilled checks that slot holds what fill wrote to it with pos.
func (s *suite[M]) wantFilled(t *testing.T, ctx context.Context, target projection.Target[M], slot string, pos annals.Position) {
	t.Helper()
	wantValue(t, fmt.Sprintf("slot %q", slot), s.committedValue(t, ctx, target, slot, "k"), fmt.Sprintf("v%d", pos))
	wantCheckpoint(t, ctx, target, slot, projection.Checkpoint{Position: pos, Parked: 1})
	wantParked(t, ctx, target, slot, 0, parkedList(pos))
}

// wantEmpty checks that slot holds nothing (dropped, or never written).
func (s *suite[M]) wantEmpty(t *testing.T, ctx context.Context, target projection.Target[M], slot string) {
	t.Helper()
	wantValue(t, fmt.Sprintf("slot %q", slot), s.committedValue(t, ctx, target, slot, "k"), "")
	wantCheckpoint(t, ctx, target, slot, projection.Checkpoint{})
	wantParked(t, ctx, target, slot, 0, nil)
}

func wantGeneration[M any](t *testing.T, ctx context.Context, target projection.Target[M], name string, want uint64) {
	t.Helper()
	got, err := target.Generation(ctx, name)
	if err != nil {
		t.Fatalf("Generation(%q): %v", name, err)
	}
	if got != want {
		t.Fatalf("Generation(%q) = %d, want %d", name, got, want)
	}
}

// Switch makes the new generation active and drops the old one's model,
// checkpoint and parked events; the new one's stay. The second switch
// also checks the suite's slot names against the target's: the slot the
// suite wrote as generation 1 is the one dropped.
func (s *suite[M]) testSwitch(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	wantGeneration(t, ctx, target, "p", 0)
	s.fill(t, ctx, target, slot("p", 0), 10)
	s.fill(t, ctx, target, slot("p", 1), 20)
	check(t, "Switch(p, 0, 1)", target.Switch(ctx, "p", 0, 1))
	wantGeneration(t, ctx, target, "p", 1)
	s.wantEmpty(t, ctx, target, slot("p", 0))
	s.wantFilled(t, ctx, target, slot("p", 1), 20)

	s.fill(t, ctx, target, slot("p", 2), 30)
	check(t, "Switch(p, 1, 2)", target.Switch(ctx, "p", 1, 2))
	wantGeneration(t, ctx, target, "p", 2)
	s.wantEmpty(t, ctx, target, slot("p", 1))
	s.wantFilled(t, ctx, target, slot("p", 2), 30)
}

// A switch from a generation that is not the active one fails with
// ErrGenerationMoved and changes nothing.
func (s *suite[M]) testSwitchMoved(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	s.fill(t, ctx, target, slot("p", 0), 10)
	s.fill(t, ctx, target, slot("p", 1), 20)
	wantErrIs(t, "Switch(p, 1, 2) with 0 active", target.Switch(ctx, "p", 1, 2), projection.ErrGenerationMoved)
	wantGeneration(t, ctx, target, "p", 0)
	s.wantFilled(t, ctx, target, slot("p", 0), 10)
	s.wantFilled(t, ctx, target, slot("p", 1), 20)

	check(t, "Switch(p, 0, 1)", target.Switch(ctx, "p", 0, 1))
	wantErrIs(t, "Switch(p, 0, 2) again", target.Switch(ctx, "p", 0, 2), projection.ErrGenerationMoved)
	wantGeneration(t, ctx, target, "p", 1)
	s.wantFilled(t, ctx, target, slot("p", 1), 20)
}

// Drop never deletes the active generation: ErrActiveGeneration, and the
// generation stays whole.
func (s *suite[M]) testDropActive(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	wantErrIs(t, "Drop(p, 0) of a fresh projection", target.Drop(ctx, "p", 0), projection.ErrActiveGeneration)
	s.fill(t, ctx, target, slot("p", 0), 10)
	wantErrIs(t, "Drop(p, 0)", target.Drop(ctx, "p", 0), projection.ErrActiveGeneration)
	s.wantFilled(t, ctx, target, slot("p", 0), 10)

	s.fill(t, ctx, target, slot("p", 1), 20)
	check(t, "Switch(p, 0, 1)", target.Switch(ctx, "p", 0, 1))
	wantErrIs(t, "Drop(p, 1) after the switch", target.Drop(ctx, "p", 1), projection.ErrActiveGeneration)
	s.wantFilled(t, ctx, target, slot("p", 1), 20)
}

// Drop deletes a generation that is not active (a rebuild given up) and
// leaves the active one be; dropping one never written is no error.
func (s *suite[M]) testDropRebuild(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	s.fill(t, ctx, target, slot("p", 0), 10)
	s.fill(t, ctx, target, slot("p", 1), 20)
	check(t, "Drop(p, 1)", target.Drop(ctx, "p", 1))
	wantGeneration(t, ctx, target, "p", 0)
	s.wantEmpty(t, ctx, target, slot("p", 1))
	s.wantFilled(t, ctx, target, slot("p", 0), 10)
	check(t, "Drop(p, 5) of a generation never written", target.Drop(ctx, "p", 5))
	s.wantFilled(t, ctx, target, slot("p", 0), 10)
}

// Generations are per projection: a switch of one leaves another's
// active generation and slots alone.
func (s *suite[M]) testGenerationPerName(t *testing.T, target projection.Target[M]) {
	ctx := testContext(t)
	s.fill(t, ctx, target, slot("a", 0), 10)
	s.fill(t, ctx, target, slot("b", 0), 11)
	s.fill(t, ctx, target, slot("b", 1), 12)
	check(t, "Switch(a, 0, 1)", target.Switch(ctx, "a", 0, 1))
	wantGeneration(t, ctx, target, "b", 0)
	s.wantFilled(t, ctx, target, slot("b", 0), 11)
	s.wantFilled(t, ctx, target, slot("b", 1), 12)
}
