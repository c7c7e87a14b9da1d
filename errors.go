package annals

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Sentinel errors. Stores wrap them with detail; test with errors.Is.
var (
	// ErrStreamNotFound: the stream has no events, or was soft-deleted.
	ErrStreamNotFound = errors.New("annals: stream not found")
	// ErrStreamDeleted: the stream was tombstoned and can never be written
	// or read again.
	ErrStreamDeleted = errors.New("annals: stream is tombstoned")
	// ErrWrongExpectedRevision matches every *WrongExpectedRevisionError.
	ErrWrongExpectedRevision = errors.New("annals: wrong expected revision")
	// ErrDuplicateEventID matches every *DuplicateEventError.
	ErrDuplicateEventID = errors.New("annals: event id already recorded elsewhere")
	// ErrInvalidInput matches every rejection of bad input (names, sizes,
	// counts, options). Nothing was written.
	ErrInvalidInput = errors.New("annals: invalid input")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("annals: store is closed")
	// ErrDiskFull: the store's disk has too little free space to take the
	// write; nothing was written. Reads go on working, and writes are taken
	// again once space is freed (see the store's documentation for when).
	ErrDiskFull = errors.New("annals: disk full")
	// ErrOutcomeUnknown: the append (or delete, tombstone, metadata write)
	// may or may not have been written, and the store could not find out
	// which. Every other error means nothing was written. Retry with the
	// same event ids: a store answers a re-append of ids it recorded at the
	// same place with the original result, so the retry is safe, and it
	// tells which it was. Stores return it when the caller's context ends
	// after the write was handed to the writer (the error then also
	// matches the context's error), PostgreSQL when the connection is lost
	// during COMMIT and the outcome cannot be learnt, and package remote
	// when a call that reached the server ends without its answer. Memory
	// never returns it: its writes are decided before Append returns.
	ErrOutcomeUnknown = errors.New("annals: the write's outcome is unknown; retry with the same event ids")
)

// OutcomeUnknown returns an error that matches both ErrOutcomeUnknown and
// cause, for a write that cause interrupted once it could have been
// written: errors.Is(err, context.Canceled) keeps telling a caller that
// gave up.
func OutcomeUnknown(cause error) error {
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, cause)
}

// WrongExpectedRevisionError is returned when a stream is not in the state
// an append, delete or tombstone expected. Nothing was written.
type WrongExpectedRevisionError struct {
	Stream   string
	Expected ExpectedRevision
	// Actual is Exact(last revision), or NoStream if the stream has no
	// events or was soft-deleted.
	Actual ExpectedRevision
}

func (e *WrongExpectedRevisionError) Error() string {
	return fmt.Sprintf("annals: wrong expected revision on stream %q: expected %s, actual %s",
		e.Stream, e.Expected, e.Actual)
}

func (e *WrongExpectedRevisionError) Is(target error) bool {
	return target == ErrWrongExpectedRevision
}

// DuplicateEventError is returned when an append carries an event id that is
// already recorded at another place (another stream, another revision, or
// not as the same run of events). Nothing was written. Re-appending the same
// ids at the same place is not an error: it is an idempotent retry.
type DuplicateEventError struct {
	ID       uuid.UUID
	Stream   string // where ID is recorded
	Revision Revision
}

func (e *DuplicateEventError) Error() string {
	return fmt.Sprintf("annals: event id %s is already recorded in stream %q at revision %d",
		e.ID, e.Stream, e.Revision)
}

func (e *DuplicateEventError) Is(target error) bool { return target == ErrDuplicateEventID }

// InvalidInputError describes bad input. It matches ErrInvalidInput.
type InvalidInputError struct {
	Field  string // what was wrong: "stream", "event[3].type", "events", ...
	Reason string
	// TooLarge is set when an append is over a size or count limit (an
	// event's size, the append's size or its number of events).
	TooLarge bool
}

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("annals: invalid %s: %s", e.Field, e.Reason)
}

func (e *InvalidInputError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, format string, args ...any) error {
	return &InvalidInputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func tooLarge(field, format string, args ...any) error {
	return &InvalidInputError{Field: field, Reason: fmt.Sprintf(format, args...), TooLarge: true}
}

// streamError wraps a sentinel with the stream name.
type streamError struct {
	stream string
	err    error
}

func (e *streamError) Error() string { return fmt.Sprintf("%v: %q", e.err, e.stream) }
func (e *streamError) Unwrap() error { return e.err }

// StreamName is the stream the error is about.
func (e *streamError) StreamName() string { return e.stream }

// StreamNotFound returns ErrStreamNotFound naming stream.
func StreamNotFound(stream string) error { return &streamError{stream, ErrStreamNotFound} }

// StreamDeleted returns ErrStreamDeleted naming stream.
func StreamDeleted(stream string) error { return &streamError{stream, ErrStreamDeleted} }
