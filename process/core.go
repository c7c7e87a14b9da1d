package process

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/annals/annals"
)

// The instance's core: what one process instance has done and what it
// must do next, with no I/O and no clock (the caller passes the time).
// The instance's stream holds its records; folding them (apply) gives the
// core back after a crash, and every decision the core makes is a record
// appended before it takes effect. The runner around it sends the
// commands the core asks for (ready) and reports their outcome (outcome),
// which the core turns into the next records.
//
// Invariants, asserted by check:
//   - a step is answered (done, undone, abandoned) at most once;
//   - an instance compensates only once no step of it is in flight, and
//     undoes its done steps from the last to the first;
//   - a finished instance (done, failed) issues nothing.

// Command is a command a process sends to one aggregate's stream: a
// type and a JSON body, which the runner's dispatcher gives to the
// aggregate's command handler.
type Command struct {
	Stream string          `json:"stream"`
	Type   string          `json:"type"`
	Data   json.RawMessage `json:"data,omitempty"`
	// Undo, if set, reverses this command: the instance sends it when
	// it compensates after a later step failed for good.
	Undo *Command `json:"undo,omitempty"`
}

// Timer asks for a message named Name at At: a deadline. Setting a timer
// of a name already set moves it.
type Timer struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Status is where an instance is.
type Status string

const (
	// Running: it has steps to send or in flight.
	Running Status = "running"
	// Waiting: nothing to send; it waits for an event or a timer.
	Waiting Status = "waiting"
	// Compensating: a step failed for good; it undoes the steps done.
	Compensating Status = "compensating"
	// Done: it finished, every step done.
	Done Status = "done"
	// Failed: a step failed for good (and the steps done were undone, if
	// the policy compensates); it is in the dead-letter list.
	Failed Status = "failed"
)

// OnFailure says what an instance does when a step fails for good.
type OnFailure uint8

const (
	// Compensate undoes the steps done, last first, then fails.
	Compensate OnFailure = iota
	// Stop fails at once, leaving the steps done as they are.
	Stop
)

// Policy is a manager's concurrency and failure policy.
type Policy struct {
	// InFlight bounds the commands of one instance in flight at once: 1
	// sends them one at a time; 0 means MaxInFlight.
	InFlight int
	// Retries is how many times a failed command is sent again before it
	// has failed for good; RetryAfter the wait before each.
	Retries    int
	RetryAfter time.Duration
	OnFailure  OnFailure
}

// MaxInFlight bounds the commands of one instance in flight.
const MaxInFlight = 256

func (p Policy) inFlight() int {
	if p.InFlight <= 0 || p.InFlight > MaxInFlight {
		return MaxInFlight
	}
	return p.InFlight
}

// stepState is where one step is.
type stepState uint8

const (
	stepPending   stepState = iota // to send, or sent and not answered
	stepDone                       // the aggregate took it
	stepUndone                     // its undo was taken
	stepAbandoned                  // not taken: the instance gave up first
	// stepUnresolved: given up while pending when the instance began to
	// compensate; its command may have been taken (sent before a crash),
	// so the aggregate is asked (a probe) before anything is undone.
	stepUnresolved
)

type step struct {
	Command  Command
	State    stepState
	Attempts int       // failed attempts of the step, or of its undo
	RetryAt  time.Time // when to send again after a failed attempt
	Err      string    // the last attempt's error
	// Gen counts the times the step was taken, undone, and is to be taken
	// again (after a retry of its failed instance): each such life has
	// keys of its own, every other resend the same key.
	Gen int
}

// core is one instance, folded from its records.
type core struct {
	status   Status
	handled  annals.Position // the last input event taken
	steps    []step
	timers   map[string]time.Time
	finish   bool   // the process decided it is over once its steps are done
	err      string // why it compensates or failed
	finished bool   // done or failed: it takes nothing more
	// control is one past the revision of the last control event of the
	// manager taken (0: none), so that one read again is skipped.
	control uint64
}

func newCore() *core {
	return &core{status: Waiting, timers: map[string]time.Time{}}
}

// check asserts the invariants that hold between records; it panics, as
// a broken invariant is a bug.
func (c *core) check() {
	if c.finished != (c.status == Done || c.status == Failed) {
		panic(fmt.Sprintf("process: finished %v in status %s", c.finished, c.status))
	}
	for i, s := range c.steps {
		if s.State == stepUndone && c.status != Compensating && c.status != Failed {
			panic(fmt.Sprintf("process: step %d undone in status %s", i, c.status))
		}
		if s.State == stepUndone && c.lastUndoable(len(c.steps)-1) > i {
			panic(fmt.Sprintf("process: step %d undone before a later done step", i))
		}
	}
}

// send is one command the core asks the runner to send now.
type send struct {
	Step    int
	Gen     int  // the step's Gen, for its keys
	Undo    bool // the step's undo, not the step
	Probe   bool // not a command: ask whether the step's command was taken
	Command Command
}

// ready lists what to send now, given the steps the runner has in
// flight, and when to ask again (zero: only on the next record).
func (c *core) ready(p Policy, inFlight map[int]bool, now time.Time) (out []send, wake time.Time) {
	if c.finished {
		return nil, time.Time{}
	}
	if c.status == Compensating {
		return c.readyUndo(inFlight, now)
	}
	room := p.inFlight() - len(inFlight)
	for i := range c.steps {
		s := &c.steps[i]
		if s.State != stepPending || inFlight[i] {
			continue
		}
		if s.RetryAt.After(now) {
			wake = earliest(wake, s.RetryAt)
			continue
		}
		if room <= 0 {
			break
		}
		out, room = append(out, send{Step: i, Gen: s.Gen, Command: s.Command}), room-1
	}
	return out, earliest(wake, c.nextTimer())
}

// readyUndo first asks whether the steps given up were taken, then sends
// the undo of the last done step, once nothing is in flight:
// compensation goes one step at a time, last first.
func (c *core) readyUndo(inFlight map[int]bool, now time.Time) (out []send, wake time.Time) {
	probing := false
	for i := range c.steps {
		s := &c.steps[i]
		if s.State != stepUnresolved {
			continue
		}
		probing = true
		switch {
		case inFlight[i]:
		case s.RetryAt.After(now):
			wake = earliest(wake, s.RetryAt)
		case len(inFlight)+len(out) < MaxInFlight:
			out = append(out, send{Step: i, Gen: s.Gen, Probe: true, Command: s.Command})
		}
	}
	i := c.lastUndoable(len(c.steps) - 1)
	if probing || len(inFlight) > 0 || i < 0 {
		return out, wake
	}
	s := &c.steps[i]
	if s.RetryAt.After(now) {
		return nil, s.RetryAt
	}
	return []send{{Step: i, Gen: s.Gen, Undo: true, Command: *s.Command.Undo}}, time.Time{}
}

// dueTimers are the timers whose time has come, by time then name.
func (c *core) dueTimers(now time.Time) []string {
	if c.finished || c.status == Compensating {
		return nil
	}
	var due []string
	for name, at := range c.timers {
		if !at.After(now) {
			due = append(due, name)
		}
	}
	slices.SortFunc(due, func(a, b string) int {
		if d := c.timers[a].Compare(c.timers[b]); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
	return due
}

func (c *core) nextTimer() time.Time {
	var next time.Time
	for _, at := range c.timers {
		next = earliest(next, at)
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
