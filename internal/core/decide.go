// Package core holds the logic every store shares, free of IO: the
// expected-revision decision, idempotent-retry detection, the visibility
// window that stream metadata defines, the durable watermark, and the
// subscription loops. Backends feed it state and do the IO.
package core

import (
	"github.com/annals/annals"
	"github.com/google/uuid"
)

// StreamState is what a store knows of a stream's tail.
//
// Invariants: Exists is false only if no event was ever appended (then
// LastRevision is 0 and SoftDeleted false); Tombstoned streams stay
// tombstoned.
type StreamState struct {
	Exists       bool
	LastRevision annals.Revision
	// LastPosition is the global position of the last change to the stream:
	// its last event, or the record of its deletion.
	LastPosition annals.Position
	SoftDeleted  bool
	Tombstoned   bool
}

// Live reports whether the stream has events that reads may show.
func (s StreamState) Live() bool { return s.Exists && !s.SoftDeleted && !s.Tombstoned }

// Actual is the stream's state as an expected revision would name it.
func (s StreamState) Actual() annals.ExpectedRevision {
	if !s.Live() {
		return annals.NoStream
	}
	return annals.Exact(s.LastRevision)
}

// NextRevision is the revision the next appended event gets.
func (s StreamState) NextRevision() annals.Revision {
	if !s.Exists {
		return 0
	}
	return s.LastRevision + 1
}

// CheckExpected decides whether stream, in state s, satisfies expected.
func CheckExpected(stream string, expected annals.ExpectedRevision, s StreamState) error {
	if s.Tombstoned {
		return annals.StreamDeleted(stream)
	}
	ok := false
	switch {
	case expected.IsAny():
		ok = true
	case expected.IsNoStream():
		ok = !s.Live()
	case expected.IsStreamExists():
		ok = s.Live()
	default:
		r, _ := expected.Revision()
		// A soft-deleted stream keeps its revisions: Exact(last) still
		// names its tail.
		ok = s.Exists && s.LastRevision == r
	}
	if ok {
		return nil
	}
	return &annals.WrongExpectedRevisionError{Stream: stream, Expected: expected, Actual: s.Actual()}
}

// Recorded is where an event id is already recorded.
type Recorded struct {
	Found    bool
	Stream   string
	Revision annals.Revision
	Position annals.Position
}

// Decision is the outcome of Decide.
type Decision struct {
	// Err, if set, rejects the append; nothing is written.
	Err error
	// Duplicate means the append is a retry of one already recorded:
	// write nothing and answer Result.
	Duplicate bool
	Result    annals.AppendResult
}

// Decide applies the append rules to stream in state s. ids are the
// caller-supplied event ids (zero for generated ones) and found says where
// each is already recorded in this stream (same length as ids; both nil
// when the caller supplied no id). Ids recorded only in other streams are
// not found: idempotency is per stream, as in KurrentDB.
//
// A retry is recognised when every id is recorded, in this stream, as one
// consecutive run in the same order, and an Exact expectation names the
// place just before the run (Any, StreamExists and NoStream name no place).
// Any other recorded id is a DuplicateEventError. KurrentDB would append
// such an id again when the expectation names the stream's end; refusing
// it is what lets a store recognise a retried command however old it is
// (package command derives event ids from the command id).
func Decide(stream string, expected annals.ExpectedRevision, s StreamState, ids []uuid.UUID, found []Recorded) Decision {
	nFound := 0
	for i := range found {
		if found[i].Found {
			nFound++
		}
	}
	if nFound == 0 {
		if err := CheckExpected(stream, expected, s); err != nil {
			return Decision{Err: err}
		}
		return Decision{}
	}
	if s.Tombstoned {
		return Decision{Err: annals.StreamDeleted(stream)}
	}
	if d, ok := retry(stream, expected, found); ok && nFound == len(ids) {
		return d
	}
	for i := range found {
		if found[i].Found {
			return Decision{Err: &annals.DuplicateEventError{ID: ids[i], Stream: found[i].Stream, Revision: found[i].Revision}}
		}
	}
	panic("unreachable: nFound > 0")
}

func retry(stream string, expected annals.ExpectedRevision, found []Recorded) (Decision, bool) {
	first := found[0]
	if !first.Found || first.Stream != stream {
		return Decision{}, false
	}
	for i := range found {
		f := found[i]
		if !f.Found || f.Stream != stream || f.Revision != first.Revision+annals.Revision(i) {
			return Decision{}, false
		}
	}
	if r, exact := expected.Revision(); exact && (first.Revision == 0 || r != first.Revision-1) {
		return Decision{}, false
	}
	// NoStream names no revision: after a soft delete the run it wrote
	// starts past 0, so any run of these ids in this stream is the retry.
	last := found[len(found)-1]
	return Decision{Duplicate: true, Result: annals.AppendResult{
		NextExpected:  annals.Exact(last.Revision),
		FirstPosition: first.Position,
		LastPosition:  last.Position,
	}}, true
}
