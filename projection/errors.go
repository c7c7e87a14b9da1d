package projection

import (
	"errors"
	"fmt"

	"github.com/annals/annals"
)

// Errors of the projector; test with errors.Is and errors.As.
var (
	// ErrRunning: Run was called on a projector that is already running.
	ErrRunning = errors.New("projection: projector is already running")
	// ErrCheckpointMoved: the stored checkpoint is not the one this
	// projector read, so another writer advanced it. The transaction is
	// rolled back; nothing is applied twice.
	ErrCheckpointMoved = errors.New("projection: checkpoint moved under the projector")
	// ErrNoReset: Reset was asked of a projection without a Reset func.
	ErrNoReset = errors.New("projection: projection cannot be reset (no Reset func)")
	// ErrStandby: Reset was asked of a projector waiting for its lease;
	// reset through the instance that holds it.
	ErrStandby = errors.New("projection: projector is on standby (another instance holds the lease)")
	// ErrGenerationMoved: a blue/green switch found another generation
	// active than the one it replaces (another instance switched).
	ErrGenerationMoved = errors.New("projection: active generation moved")
	// ErrActiveGeneration: Drop was asked to delete the active generation.
	ErrActiveGeneration = errors.New("projection: cannot drop the active generation")
	// ErrNotRunning: an action that needs a running projector (Pause,
	// Resume, Rebuild) was asked of one that is not running: its owner
	// starts it.
	ErrNotRunning = errors.New("projection: projector is not running")
	// ErrFailed: the action needs a running projector, and its error
	// policy gave up (state failed). Resume retries it; Reset replays it
	// from the start. It wraps ErrNotRunning.
	ErrFailed = fmt.Errorf("%w: it has failed", ErrNotRunning)
	// ErrRebuilding: a blue/green rebuild is already in progress.
	ErrRebuilding = errors.New("projection: a rebuild is in progress")
	// ErrInvalid: a projection or its options cannot run as given.
	ErrInvalid = errors.New("projection: invalid projection")
)

// HandlerError is the error of a projection's handler on one event.
type HandlerError struct {
	Position annals.Position
	Stream   string
	Type     string
	Err      error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("projection: handling %s at position %d of stream %s: %v", e.Type, e.Position, e.Stream, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// FailedError ends Run when the error policy gave up: the projection
// stopped at Position (the last event it applied) and Err is the last
// error. Run again (after fixing the cause) resumes at annals.After(Position).
type FailedError struct {
	Name     string
	Position annals.Position
	Attempts int
	Err      error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("projection %s: failed after %d attempts at position %d: %v", e.Name, e.Attempts, e.Position, e.Err)
}

func (e *FailedError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// truncate keeps at most MaxErrorBytes of an error text.
func truncate(s string) string {
	if len(s) > MaxErrorBytes {
		return s[:MaxErrorBytes]
	}
	return s
}
