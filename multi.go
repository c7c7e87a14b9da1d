package annals

import (
	"fmt"
	"strings"
)

// MultiAppend is an append to several streams that commits all of its
// records or none: a decision that spans streams (move stock from one
// warehouse to another, purge every list of a user) without a process
// manager in between.
//
// The records take consecutive positions of $all in the order given,
// whatever their streams, and each stream's records take its next
// revisions in that order. The checks are evaluated against the streams'
// state before the append, all of them: if any fails nothing is written
// and the error names every check that failed. A check may name a stream
// the append writes (its expected revision) or one it only read.
type MultiAppend struct {
	Records []Record
	Checks  []StreamCheck
	// Condition, if set, fails the append with a *ConditionError if any
	// event matching its query was appended after its position (dynamic
	// consistency boundaries, see Condition).
	Condition *Condition
}

// Record is one event of a MultiAppend and the stream it goes to.
type Record struct {
	Stream string
	Event  EventData
}

// StreamCheck asserts that Stream is in the state Expected names when a
// MultiAppend commits. Exact(r) holds for a stream whose last event is r
// (soft-deleted or not), NoStream for one without live events (never
// written, soft-deleted or tombstoned), StreamExists for one with live
// events, Deleted for a soft-deleted one, Tombstoned for a tombstoned
// one. Any is not a check: it is refused.
type StreamCheck struct {
	Stream   string
	Expected ExpectedRevision
}

// StreamAppend is one stream's part of a multi-stream append written
// stream by stream, as KurrentDB's AppendSession sends it: the stream, the
// revision it is expected at, and its events.
type StreamAppend struct {
	Stream   string
	Expected ExpectedRevision
	Events   []EventData
}

// Streams builds the MultiAppend that writes each part's events, part
// after part, with each part's expectation as a check (Any adds none).
func Streams(parts ...StreamAppend) MultiAppend {
	var m MultiAppend
	for _, p := range parts {
		for _, e := range p.Events {
			m.Records = append(m.Records, Record{Stream: p.Stream, Event: e})
		}
		if !p.Expected.IsAny() {
			m.Checks = append(m.Checks, StreamCheck{Stream: p.Stream, Expected: p.Expected})
		}
	}
	return m
}

// MultiAppendResult describes a successful MultiAppend.
type MultiAppendResult struct {
	// Streams has one entry per stream written, in the order of each
	// stream's first record.
	Streams []StreamResult
	// FirstPosition and LastPosition are the global positions of the first
	// and last records.
	FirstPosition, LastPosition Position
}

// StreamResult is where a MultiAppend left one stream.
type StreamResult struct {
	Stream string
	// NextExpected is Exact(the revision of the stream's last record).
	NextExpected ExpectedRevision
	// LastPosition is the global position of the stream's last record.
	LastPosition Position
}

// Violation is one failed check of a MultiAppend, or a written stream
// that cannot be written (tombstoned).
type Violation struct {
	// Check is the check's index in MultiAppend.Checks. A written stream
	// without a check that fails (it is tombstoned) gets the indexes after
	// the checks, in the order of the streams' first records, as
	// KurrentDB numbers them.
	Check    int
	Stream   string
	Expected ExpectedRevision // Any for a written stream without a check
	// Actual is Exact(the stream's last revision) if it ever had events,
	// deleted or not, and NoStream if it never had any; Deleted and
	// Tombstoned say whether it is deleted.
	Actual     ExpectedRevision
	Deleted    bool // soft-deleted
	Tombstoned bool
	// Written says the append writes the stream.
	Written bool
}

// ConsistencyError is returned when checks of a MultiAppend fail, or a
// stream it writes is tombstoned. Nothing was written. It lists every
// failure, so a caller can refresh all the state it decided on in one
// round trip. It matches ErrWrongExpectedRevision, and ErrStreamDeleted
// too when a written stream is tombstoned.
type ConsistencyError struct {
	Violations []Violation
}

func (e *ConsistencyError) Error() string {
	var b strings.Builder
	b.WriteString("annals: consistency checks failed:")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString(";")
		}
		actual := v.Actual.String()
		switch {
		case v.Tombstoned:
			actual = "tombstoned"
		case v.Deleted:
			actual = "deleted"
		}
		fmt.Fprintf(&b, " check %d on stream %q expected %s, actual %s", v.Check, v.Stream, v.Expected, actual)
	}
	return b.String()
}

func (e *ConsistencyError) Is(target error) bool {
	if target == ErrWrongExpectedRevision {
		return true
	}
	if target == ErrStreamDeleted {
		for _, v := range e.Violations {
			if v.Written && v.Tombstoned {
				return true
			}
		}
	}
	return false
}
