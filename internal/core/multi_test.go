package core

import (
	"errors"
	"slices"
	"testing"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// TestCheckHolds is KurrentDB's table of StreamStateCheck outcomes, for a
// stream checked only and for one also written.
func TestCheckHolds(t *testing.T) {
	missing := StreamState{}
	at2 := StreamState{Exists: true, LastRevision: 2, LastPosition: 9}
	deleted2 := StreamState{Exists: true, LastRevision: 2, LastPosition: 10, SoftDeleted: true}
	tombstoned := StreamState{Exists: true, LastRevision: 2, LastPosition: 10, Tombstoned: true}
	states := []StreamState{missing, at2, deleted2, tombstoned}
	cases := []struct {
		expected           annals.ExpectedRevision
		checkOnly, written [4]bool // missing, at2, deleted2, tombstoned
	}{
		{annals.Any, [4]bool{true, true, true, true}, [4]bool{true, true, true, false}},
		{annals.NoStream, [4]bool{true, false, true, true}, [4]bool{true, false, true, false}},
		{annals.StreamExists, [4]bool{false, true, false, false}, [4]bool{false, true, false, false}},
		{annals.Exact(2), [4]bool{false, true, true, false}, [4]bool{false, true, true, false}},
		{annals.Exact(3), [4]bool{}, [4]bool{}},
		{annals.Deleted, [4]bool{false, false, true, false}, [4]bool{false, false, true, false}},
		{annals.Tombstoned, [4]bool{false, false, false, true}, [4]bool{}},
	}
	for _, c := range cases {
		for i, st := range states {
			if got := CheckHolds(c.expected, st, false); got != c.checkOnly[i] {
				t.Errorf("%s on %+v, checked only: %v, want %v", c.expected, st, got, c.checkOnly[i])
			}
			if got := CheckHolds(c.expected, st, true); got != c.written[i] {
				t.Errorf("%s on %+v, written: %v, want %v", c.expected, st, got, c.written[i])
			}
		}
	}
}

func TestPlanMulti(t *testing.T) {
	v := newFakeView()
	v.states["a"] = StreamState{Exists: true, LastRevision: 4, LastPosition: 7}
	v.states["gone"] = StreamState{Exists: true, LastRevision: 0, LastPosition: 3, Tombstoned: true}
	rec := func(stream, typ string) annals.Record {
		return annals.Record{Stream: stream, Event: annals.EventData{ID: uuid.New(), Type: typ}}
	}
	m := annals.MultiAppend{
		Records: []annals.Record{rec("a", "A"), rec("b", "B"), rec("a", "A")},
		Checks:  []annals.StreamCheck{{Stream: "a", Expected: annals.Exact(4)}, {Stream: "c", Expected: annals.NoStream}},
	}
	p := PlanOp(v, &Op{Kind: OpMulti, Multi: &m}, 10, planNow)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	var revs []annals.Revision
	var pos []annals.Position
	for _, e := range p.Events {
		revs, pos = append(revs, e.Revision), append(pos, e.Position)
	}
	if !slices.Equal(revs, []annals.Revision{5, 0, 6}) || !slices.Equal(pos, []annals.Position{10, 11, 12}) {
		t.Fatalf("revisions %v positions %v, want [5 0 6] at [10 11 12]", revs, pos)
	}
	if len(p.Updates) != 2 || p.Updates[0].State.LastRevision != 6 || p.Updates[0].State.LastPosition != 12 {
		t.Fatalf("updates %+v, want a at 6@12 and b", p.Updates)
	}

	// Every failure at once: a check, and a written tombstoned stream
	// without a check (indexed after the checks).
	bad := annals.MultiAppend{
		Records: []annals.Record{rec("a", "A"), rec("gone", "G")},
		Checks:  []annals.StreamCheck{{Stream: "a", Expected: annals.Exact(3)}},
	}
	p = PlanOp(v, &Op{Kind: OpMulti, Multi: &bad}, 10, planNow)
	var ce *annals.ConsistencyError
	if !errors.As(p.Err, &ce) || len(ce.Violations) != 2 || ce.Violations[1].Check != 1 || !errors.Is(p.Err, annals.ErrStreamDeleted) {
		t.Fatalf("error %v, want two violations, the tombstoned one at index 1", p.Err)
	}
	if len(p.Events) != 0 {
		t.Fatal("a refused plan has events")
	}

	// A condition: a matching event after its position refuses it.
	v.matchAt = 8
	cond := annals.MultiAppend{Records: []annals.Record{rec("b", "B")}, Condition: &annals.Condition{After: 7}}
	p = PlanOp(v, &Op{Kind: OpMulti, Multi: &cond}, 10, planNow)
	var cf *annals.ConditionError
	if !errors.As(p.Err, &cf) || cf.Position != 8 {
		t.Fatalf("error %v, want a condition failed at 8", p.Err)
	}
	cond.Condition.After = 8
	if p = PlanOp(v, &Op{Kind: OpMulti, Multi: &cond}, 10, planNow); p.Err != nil {
		t.Fatalf("condition after the match: %v", p.Err)
	}
}
