package annals

import "strconv"

type expectedKind uint8

const (
	expectAny expectedKind = iota
	expectNoStream
	expectStreamExists
	expectExact
	expectDeleted
	expectTombstoned
)

// ExpectedRevision is the state of the stream an append, delete or
// tombstone expects to find. The zero value is Any.
type ExpectedRevision struct {
	kind     expectedKind
	revision Revision
}

var (
	// Any accepts the stream in any state.
	Any = ExpectedRevision{kind: expectAny}
	// NoStream accepts a stream that has no events, or was soft-deleted.
	NoStream = ExpectedRevision{kind: expectNoStream}
	// StreamExists accepts a stream that has events and is not deleted.
	StreamExists = ExpectedRevision{kind: expectStreamExists}
	// Deleted accepts only a soft-deleted stream, and Tombstoned only a
	// tombstoned one. They are states a check of a MultiAppend may ask
	// for (a decision that a deleted stream stays deleted); an append,
	// delete or tombstone refuses them as invalid input.
	Deleted    = ExpectedRevision{kind: expectDeleted}
	Tombstoned = ExpectedRevision{kind: expectTombstoned}
)

// Exact accepts the stream only if its last event has revision r.
func Exact(r Revision) ExpectedRevision { return ExpectedRevision{kind: expectExact, revision: r} }

// IsAny, IsNoStream and IsStreamExists report which special state e is.
func (e ExpectedRevision) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedRevision) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedRevision) IsStreamExists() bool { return e.kind == expectStreamExists }
func (e ExpectedRevision) IsDeleted() bool      { return e.kind == expectDeleted }
func (e ExpectedRevision) IsTombstoned() bool   { return e.kind == expectTombstoned }

// Revision returns the exact revision and true, or 0 and false for the
// special states.
func (e ExpectedRevision) Revision() (Revision, bool) {
	return e.revision, e.kind == expectExact
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectDeleted:
		return "deleted"
	case expectTombstoned:
		return "tombstoned"
	case expectExact:
		return strconv.FormatUint(uint64(e.revision), 10)
	default:
		return "any"
	}
}
