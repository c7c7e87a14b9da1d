package persistent

import "errors"

// Errors of the engine; test with errors.Is. Bad settings and names are
// annals.ErrInvalidInput (an *annals.InvalidInputError).
var (
	// ErrGroupNotFound: no group of that name on that stream.
	ErrGroupNotFound = errors.New("persistent: subscription group does not exist")
	// ErrGroupExists: a group of that name already exists on that stream.
	ErrGroupExists = errors.New("persistent: subscription group already exists")
	// ErrTooManyGroups: the manager holds MaxGroups groups.
	ErrTooManyGroups = errors.New("persistent: too many subscription groups")
	// ErrMaxSubscribers: the group has as many consumers as it allows.
	ErrMaxSubscribers = errors.New("persistent: maximum subscribers reached")
	// ErrDropped ends a consumer whose group was deleted, updated or
	// restarted: connect again.
	ErrDropped = errors.New("persistent: subscription dropped by the server")
	// ErrStopped ends a consumer that nacked with NackStop.
	ErrStopped = errors.New("persistent: consumer stopped by its own nack")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("persistent: manager is closed")
)
