package command

import (
	"errors"
	"fmt"
)

// ErrConflict matches every *ConflictError.
var ErrConflict = errors.New("command: the stream kept changing while the command was decided; try again")

// ConflictError is returned when every attempt to handle a command lost the
// race to another writer: the stream moved between each load and its
// append. Nothing was written. It wraps the last refusal, so it also
// matches annals.ErrWrongExpectedRevision.
type ConflictError struct {
	Stream   string
	Attempts int
	Err      error // the last refusal of the store
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("command: stream %q changed during each of %d attempts; try again (last: %v)", e.Stream, e.Attempts, e.Err)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
func (e *ConflictError) Unwrap() error        { return e.Err }
