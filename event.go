// Package annals is the book of record for event-sourced systems: the event
// model and the contract every Annals store fulfils.
//
// An append is a compare-and-swap on a stream's tail: the writer states the
// revision it expects ([ExpectedRevision]) and the store rejects the write
// with a [*WrongExpectedRevisionError] if the stream moved. Every event gets
// a place in one global order ($all) that starts at 1, has no gaps and
// follows commit order, so any reader can replay from any point.
//
// Stores: package memory (reference, tests, examples), package embedded
// (durable, on pebble; the default) and package postgres (one log shared by
// several processes). Every store passes the conformance suite in package
// storetest.
package annals

import (
	"time"

	"github.com/google/uuid"
)

// Content types recorded with an event. JSON is the convention; any other
// payload is opaque bytes.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeBinary = "application/octet-stream"
)

// System event types written by the stores themselves.
const (
	// EventTypeMetadata is the type of the events in a metastream ($$stream).
	EventTypeMetadata = "$metadata"
	// EventTypeStreamDeleted marks a tombstone in the global log. Its
	// revision is [RevisionTombstone].
	EventTypeStreamDeleted = "$streamDeleted"
)

// Revision is an event's 0-based place in its stream. It is a type of its
// own, not a bare integer, so that a global position cannot be passed where a
// revision is meant (or the other way round) without a conversion in sight.
type Revision uint64

// Position is an event's place in the global log: the first event is at 1,
// and 0 (Start) is before every event.
type Position uint64

// RevisionTombstone is the revision of the $streamDeleted event a tombstone
// writes to the global log, as in KurrentDB.
const RevisionTombstone Revision = 1<<63 - 1

// EventData is an event proposed for appending.
type EventData struct {
	// ID identifies the event for idempotent retries. The zero UUID asks the
	// store to generate one: a UUID version 7 (time-ordered, not random),
	// which a retry cannot repeat, so an append that may be retried (see
	// ErrOutcomeUnknown) gives its own ids.
	ID uuid.UUID
	// Type names what happened ("SeatBooked"). Required.
	Type string
	// ContentType of Data; empty means ContentTypeJSON.
	ContentType string
	// Data is the payload; Metadata is user metadata (correlation ids and
	// the like). Both are stored as given.
	Data     []byte
	Metadata []byte
	// Tags are short strings that say what the event is about
	// ("course:c1", "student:s7"), for the queries of dynamic consistency
	// boundaries (Query): a set, kept in the order given, each at most
	// MaxTagBytes, at most MaxTagsPerEvent of them.
	Tags []string
}

// Event is a recorded event.
type Event struct {
	ID          uuid.UUID
	Stream      string
	Type        string
	ContentType string
	Data        []byte
	Metadata    []byte
	Tags        []string
	// Recorded is when the store accepted the event (UTC). It never
	// decreases along the global order.
	Recorded time.Time
	// Revision is the event's 0-based place in its stream.
	Revision Revision
	// Position is the event's place in the global order: starts at 1,
	// strictly increasing, gapless, in commit order.
	Position Position
	// Link, when a read with ResolveLinks resolved a link, is the link
	// this event was read through: a $> event of the stream read, or of
	// an index stream ($ce-, $et-, $streams). The event itself is then
	// the one pointed at, from its own stream. Nil otherwise.
	Link *Event
}

// Original returns the event as the read found it in the stream read:
// the link when the event was resolved through one (Link), else the event
// itself. Its Revision (and, in $all, Position) is where to resume.
func (e *Event) Original() *Event {
	if e.Link != nil {
		return e.Link
	}
	return e
}

// Start and End name the two ends of a stream or of the global log in read
// and subscription options. They are untyped, and take the type of the field
// they are given to: a Revision in stream options, a Position in the log's.
// Revisions start at 0 and positions at 1, so Start is before everything; End
// is after everything.
const (
	Start = 0
	End   = 1<<64 - 1
)

// After returns where to resume a read or subscription that has handled x:
// the revision or position just after it, as the From options are inclusive.
// After(End) is End. Resume with From: After(checkpoint) rather than
// checkpoint+1, which is easy to forget and wraps around at End.
func After[T Revision | Position](x T) T {
	if x == End {
		return x
	}
	return x + 1
}

// AllStream is the name KurrentDB gives the global log.
const AllStream = "$all"

// MetastreamOf returns the name of the stream that holds stream's metadata.
func MetastreamOf(stream string) string { return "$$" + stream }

// IsMetastream reports whether stream holds another stream's metadata, and
// whose.
func IsMetastream(stream string) (of string, ok bool) {
	if len(stream) > 2 && stream[0] == '$' && stream[1] == '$' {
		return stream[2:], true
	}
	return "", false
}

// Category returns the category of a stream: its name up to the first '-'
// ("order-42" is in category "order"). A name without '-' is its own
// category.
func Category(stream string) string {
	for i := 0; i < len(stream); i++ {
		if stream[i] == '-' {
			return stream[:i]
		}
	}
	return stream
}
