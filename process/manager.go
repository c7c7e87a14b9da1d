package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/google/uuid"
)

// Manager defines a process manager: which events start and advance its
// instances, how an event names its instance, and the process itself: a
// state S, event-sourced in the instance's stream from events E, and a
// pure Decide.
type Manager[S, E any] struct {
	// Name names the manager's streams: "process.<Name>" (its
	// checkpoint and its instances' starts and ends),
	// "process.<Name>-<id>" (each instance) and "process.<Name>.control"
	// (an operator's retries and abandons). It holds 1 to 100 letters,
	// digits or '_'. Streams whose names begin with "process." are the
	// managers'.
	Name string
	// Filter selects the events of $all the manager takes; nil takes
	// every event not written by a system or by a process manager.
	Filter *annals.Filter
	// Correlate names the instance an event belongs to (an id in its data
	// or metadata), or false to leave the event alone.
	Correlate func(annals.Event) (id string, ok bool)
	// Initial is an instance's state before its first event.
	Initial func() S
	// Evolve folds an instance's own event into its state.
	Evolve func(S, E) S
	// Decide takes one input (an event of $all, or a timer the instance
	// set, firing) and returns the instance's events to record and what
	// to do. An error fails the instance with it.
	Decide func(S, Input) ([]E, Decision, error)
	// Codec encodes the instance's events E.
	Codec command.Codec[E]
	// Policy is the concurrency and failure policy of every instance.
	Policy Policy
}

// Input is what Decide is given: an event of $all, or a timer firing.
type Input struct {
	Event *annals.Event // nil for a timer
	Timer string        // the timer's name, for a timer
	Now   time.Time     // when the input is taken
}

// Dispatcher sends a process's commands to their aggregates. Key is the
// command's idempotency key, derived from the instance and the step: the
// same at every attempt, so a command sent again after a crash is applied
// once.
type Dispatcher interface {
	// Send sends c. An error wrapping ErrRefused is the aggregate's
	// refusal, and is not retried; any other error is.
	Send(ctx context.Context, c Command, key uuid.UUID) error
	// Taken reports whether the aggregate took the command with key.
	Taken(ctx context.Context, c Command, key uuid.UUID) (bool, error)
}

// ErrRefused marks an aggregate's refusal of a command: its decider said
// no, and saying it again changes nothing.
var ErrRefused = errors.New("process: the aggregate refused the command")

// streamPrefix begins the names of every process manager's streams.
const streamPrefix = "process."

func (m *Manager[S, E]) validate() error {
	switch {
	case !validName(m.Name):
		return fmt.Errorf("process: the manager's name %q must be 1 to %d letters, digits or _", m.Name, maxNameBytes)
	case m.Correlate == nil || m.Initial == nil || m.Evolve == nil || m.Decide == nil || m.Codec == nil:
		return errors.New("process: a Manager needs Correlate, Initial, Evolve, Decide and a Codec")
	}
	return m.Filter.Validate()
}

// maxNameBytes bounds a manager's name.
const maxNameBytes = 100

// validName reports whether name may name a manager: its streams'
// names then sort so that Managers can step over its instances.
func validName(name string) bool {
	if name == "" || len(name) > maxNameBytes {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (m *Manager[S, E]) managerStream() string { return streamPrefix + m.Name }

func (m *Manager[S, E]) instanceStream(id string) string { return streamPrefix + m.Name + "-" + id }

// keySpace is the name space of the commands' idempotency keys.
var keySpace = uuid.MustParse("0b7f6a4e-2c1d-4e8a-9f3b-5d6c7e8f9a01")

// commandKey is the idempotency key of step i of the instance on stream
// in its life gen, or of its undo.
func commandKey(stream string, i int, undo bool, gen int) uuid.UUID {
	if gen == 0 {
		return uuid.NewSHA1(keySpace, fmt.Appendf(nil, "%s\x00%d\x00%v", stream, i, undo))
	}
	return uuid.NewSHA1(keySpace, fmt.Appendf(nil, "%s\x00%d\x00%v\x00%d", stream, i, undo, gen))
}
