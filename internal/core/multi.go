package core

import (
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// The plan of a multi-stream append (OpMulti).
//
// Invariants, asserted with the invariants build tag:
//   - the records take consecutive positions in request order, after the
//     $metadata events that bring soft-deleted streams back;
//   - each stream's records take consecutive revisions from its next one;
//   - Updates hold one final state per stream touched.
//
// Order of the decision: an idempotent retry is recognised first (all
// record ids recorded as one run) and answered with the original result,
// as the checks no longer hold once the original moved the streams on.
// Otherwise every check is evaluated, and every written stream without
// one: all failures are reported at once.

// CheckHolds reports whether a stream in state s satisfies a check's
// expectation, as KurrentDB's StreamStateCheck decides it; written says
// the append writes the stream. NoStream holds for a stream without live
// events, a tombstoned one included, unless the append writes it; Exact
// holds for a soft-deleted stream still at that revision, as an append's
// expectation does.
func CheckHolds(expected annals.ExpectedRevision, s StreamState, written bool) bool {
	if s.Tombstoned {
		return !written && (expected.IsTombstoned() || expected.IsNoStream() || expected.IsAny())
	}
	switch {
	case expected.IsAny():
		return true
	case expected.IsNoStream():
		return !s.Live()
	case expected.IsStreamExists():
		return s.Live()
	case expected.IsDeleted():
		return s.SoftDeleted
	case expected.IsTombstoned():
		return false
	}
	r, _ := expected.Revision()
	return s.Exists && s.LastRevision == r
}

func planMulti(v View, m *annals.MultiAppend, next annals.Position, now time.Time) (Plan, error) {
	order, states, err := writtenStreams(v, m.Records)
	if err != nil {
		return Plan{}, err
	}
	p, retried, err := multiRetry(v, m, states)
	if err != nil || retried {
		return p, err
	}
	if err := checkAll(v, m.Checks, order, states); err != nil {
		return Plan{}, err
	}
	if c := m.Condition; c != nil {
		pos, err := v.FirstMatch(c.Query, c.After)
		if err != nil {
			return Plan{}, err
		}
		if pos != 0 {
			return Plan{}, &annals.ConditionError{Position: pos}
		}
	}
	return planRecords(v, m.Records, order, states, next, now)
}

// writtenStreams returns the streams the records write, in the order of
// their first record, and their states before the append.
func writtenStreams(v View, records []annals.Record) ([]string, map[string]StreamState, error) {
	var order []string
	states := map[string]StreamState{}
	for i := range records {
		stream := records[i].Stream
		if _, seen := states[stream]; seen {
			continue
		}
		st, err := v.State(stream)
		if err != nil {
			return nil, nil, err
		}
		states[stream] = st
		order = append(order, stream)
	}
	return order, states, nil
}

// checkAll evaluates every check, then every written stream without a
// check (only a tombstoned one fails), and reports each failure.
func checkAll(v View, checks []annals.StreamCheck, order []string, states map[string]StreamState) error {
	var violations []annals.Violation
	fail := func(i int, stream string, expected annals.ExpectedRevision, st StreamState, written bool) {
		actual := annals.NoStream
		if st.Exists {
			actual = annals.Exact(st.LastRevision)
		}
		violations = append(violations, annals.Violation{
			Check: i, Stream: stream, Expected: expected, Actual: actual,
			Deleted: st.SoftDeleted && !st.Tombstoned, Tombstoned: st.Tombstoned, Written: written,
		})
	}
	checked := make(map[string]struct{}, len(checks))
	for i, c := range checks {
		checked[c.Stream] = struct{}{}
		st, written := states[c.Stream]
		if !written {
			var err error
			if st, err = v.State(c.Stream); err != nil {
				return err
			}
		}
		if !CheckHolds(c.Expected, st, written) {
			fail(i, c.Stream, c.Expected, st, written)
		}
	}
	i := len(checks)
	for _, stream := range order {
		if _, ok := checked[stream]; ok {
			continue
		}
		if st := states[stream]; !CheckHolds(annals.Any, st, true) {
			fail(i, stream, annals.Any, st, true)
		}
		i++
	}
	if violations == nil {
		return nil
	}
	return &annals.ConsistencyError{Violations: violations}
}

// multiRetry recognises a retried multi-stream append: every record's id
// recorded in its stream, all of them as one run of $all in request order,
// and each Exact check on a written stream naming the place before that
// stream's records. Then it returns the original result. Some ids
// recorded but not as that run: a DuplicateEventError.
func multiRetry(v View, m *annals.MultiAppend, states map[string]StreamState) (Plan, bool, error) {
	var found []Recorded
	nFound := 0
	for i := range m.Records {
		id := m.Records[i].Event.ID
		if id == (uuid.UUID{}) {
			continue
		}
		if found == nil {
			found = make([]Recorded, len(m.Records))
		}
		rec, err := v.Lookup(m.Records[i].Stream, id)
		if err != nil {
			return Plan{}, false, err
		}
		found[i] = rec
		if rec.Found {
			nFound++
		}
	}
	if nFound == 0 {
		return Plan{}, false, nil
	}
	for _, st := range states {
		if st.Tombstoned {
			return Plan{}, false, nil // never a retry: checkAll reports it
		}
	}
	if nFound == len(m.Records) && isRun(found) && retryChecksHold(m, found) {
		return Plan{Duplicate: true, Streams: resultOf(m.Records, found),
			Result: annals.AppendResult{FirstPosition: found[0].Position, LastPosition: found[len(found)-1].Position}}, true, nil
	}
	for i := range found {
		if found[i].Found {
			return Plan{}, false, &annals.DuplicateEventError{ID: m.Records[i].Event.ID, Stream: found[i].Stream, Revision: found[i].Revision}
		}
	}
	panic("unreachable: nFound > 0")
}

// isRun reports whether found are consecutive positions of $all.
func isRun(found []Recorded) bool {
	for i := range found {
		if found[i].Position != found[0].Position+annals.Position(i) {
			return false
		}
	}
	return true
}

// retryChecksHold reports whether each Exact check on a written stream
// names the revision just before that stream's first recorded record.
func retryChecksHold(m *annals.MultiAppend, found []Recorded) bool {
	first := map[string]annals.Revision{}
	for i := len(m.Records) - 1; i >= 0; i-- {
		first[m.Records[i].Stream] = found[i].Revision
	}
	for _, c := range m.Checks {
		f, written := first[c.Stream]
		if !written {
			continue
		}
		if r, exact := c.Expected.Revision(); exact && (f == 0 || r != f-1) {
			return false
		}
	}
	return true
}

// resultOf gives the per-stream results of records recorded at found.
func resultOf(records []annals.Record, found []Recorded) []annals.StreamResult {
	var out []annals.StreamResult
	index := map[string]int{}
	for i := range records {
		stream := records[i].Stream
		j, ok := index[stream]
		if !ok {
			j = len(out)
			index[stream] = j
			out = append(out, annals.StreamResult{Stream: stream})
		}
		out[j].NextExpected = annals.Exact(found[i].Revision)
		out[j].LastPosition = found[i].Position
	}
	return out
}

// planRecords writes the records: first a $metadata event for each
// soft-deleted stream written (it comes back with only the new events
// visible, as for a single append), then the records in request order.
func planRecords(v View, records []annals.Record, order []string, states map[string]StreamState, next annals.Position, now time.Time) (Plan, error) {
	var p Plan
	for _, stream := range order {
		st := states[stream]
		if !st.SoftDeleted {
			continue
		}
		md, err := v.Metadata(stream)
		if err != nil {
			return Plan{}, err
		}
		md.TruncateBefore = st.NextRevision()
		if err := planMetadata(v, &p, stream, md, &next, now); err != nil {
			return Plan{}, err
		}
	}
	nextRev := make(map[string]annals.Revision, len(order))
	for _, stream := range order {
		nextRev[stream] = states[stream].NextRevision()
	}
	found := make([]Recorded, len(records))
	for i := range records {
		r := &records[i]
		e := newEvent(r.Stream, &r.Event, nextRev[r.Stream], next, now)
		nextRev[r.Stream]++
		next++
		p.Events = append(p.Events, e)
		found[i] = Recorded{Found: true, Stream: e.Stream, Revision: e.Revision, Position: e.Position}
	}
	p.Streams = resultOf(records, found)
	for _, r := range p.Streams {
		last, _ := r.NextExpected.Revision()
		p.Updates = append(p.Updates, StreamUpdate{Stream: r.Stream, State: StreamState{
			Exists: true, LastRevision: last, LastPosition: r.LastPosition,
		}})
	}
	p.Result = annals.AppendResult{
		FirstPosition: found[0].Position,
		LastPosition:  found[len(found)-1].Position,
	}
	return p, nil
}
