package process

import (
	"errors"
	"fmt"
	"time"

	"github.com/annals/annals"
)

// Decision is what a process decides on one input: the commands to send
// (the instance's next steps), timers to set and cancel, and whether the
// process is over once its steps are done.
type Decision struct {
	Commands []Command
	Timers   []Timer
	Cancel   []string
	Finish   bool
}

// Limits of one decision and of one instance.
const (
	// MaxCommandsPerDecision bounds the commands one input may issue. The
	// decision is one append (within the store's MaxAppendSizeBytes, 8 MiB
	// by default) of records of 500 commands each (within its
	// MaxEventSizeBytes, 1 MiB).
	MaxCommandsPerDecision = 10_000
	// MaxSteps bounds the steps of one instance over its life.
	MaxSteps = 1_000_000
	// MaxTimers bounds the timers an instance has set at once.
	MaxTimers = 64
)

// ErrLimit is returned for a decision past a limit of this file.
var ErrLimit = errors.New("process: past a limit")

// takes reports whether the instance takes the event at position p: an
// event it took already (read again after a crash) is skipped.
func (c *core) takes(p annals.Position) bool {
	return !c.finished && c.status != Compensating && p > c.handled
}

// decided is the record of d, taken on the event at position p or on the
// timer named timer.
func (c *core) decided(p annals.Position, timer string, d Decision) (record, error) {
	if len(d.Commands) > MaxCommandsPerDecision || len(c.steps)+len(d.Commands) > MaxSteps {
		return record{}, fmt.Errorf("%w: %d commands in one decision (at most %d), %d steps in all (at most %d)",
			ErrLimit, len(d.Commands), MaxCommandsPerDecision, len(c.steps)+len(d.Commands), MaxSteps)
	}
	timers := len(c.timers)
	for _, t := range d.Timers {
		if _, ok := c.timers[t.Name]; !ok {
			timers++
		}
	}
	if timers > MaxTimers {
		return record{}, fmt.Errorf("%w: %d timers set at once, at most %d", ErrLimit, timers, MaxTimers)
	}
	for _, cmd := range d.Commands {
		if cmd.Stream == "" || cmd.Type == "" || (cmd.Undo != nil && (cmd.Undo.Stream == "" || cmd.Undo.Type == "")) {
			return record{}, fmt.Errorf("process: a command needs a stream and a type: %+v", cmd)
		}
	}
	return record{Kind: recDecided, Position: p, Timer: timer, Steps: d.Commands, Set: d.Timers, Cancel: d.Cancel, Finish: d.Finish}, nil
}

// stepsPerRecord bounds the steps one record holds: 500 commands of 2 KB
// of JSON each fit the store's default event size (1 MiB).
const stepsPerRecord = 500

// split spreads the steps of a decision over records of stepsPerRecord,
// appended together.
func split(recs []record) []record {
	var out []record
	for _, r := range recs {
		if r.Kind != recDecided || len(r.Steps) <= stepsPerRecord {
			out = append(out, r)
			continue
		}
		rest := r.Steps[stepsPerRecord:]
		r.Steps = r.Steps[:stepsPerRecord:stepsPerRecord]
		out = append(out, r)
		for len(rest) > 0 {
			n := min(len(rest), stepsPerRecord)
			out = append(out, record{Kind: recMoreSteps, Steps: rest[:n:n]})
			rest = rest[n:]
		}
	}
	return out
}

// answer is what became of one send.
type answer struct {
	Err       error // nil: the aggregate took the command (or its undo)
	Permanent bool  // Err will not change on a retry (the aggregate refused it)
	Taken     bool  // for a probe: the aggregate had taken the command
}

// outcome is the record of a's answer to s.
func (c *core) outcome(s send, a answer, p Policy, now time.Time) record {
	st := c.steps[s.Step]
	if c.status == Compensating && !s.Undo && !s.Probe {
		// The late answer of a command given up while it was in flight.
		switch {
		case a.Err == nil:
			return record{Kind: recStepDone, Step: s.Step}
		case a.Permanent:
			return record{Kind: recStepAbandoned, Step: s.Step}
		}
		return record{Kind: recStepFailed, Step: s.Step, Error: a.Err.Error(), RetryAt: now.Add(p.RetryAfter)} // a probe decides
	}
	switch {
	case s.Probe && a.Err == nil && a.Taken:
		return record{Kind: recStepDone, Step: s.Step}
	case s.Probe && a.Err == nil:
		return record{Kind: recStepAbandoned, Step: s.Step}
	case a.Err == nil:
		return record{Kind: recStepDone, Step: s.Step, Undo: s.Undo}
	case s.Probe || (!a.Permanent && st.Attempts < p.Retries):
		return record{Kind: recStepFailed, Step: s.Step, Undo: s.Undo, Error: a.Err.Error(), RetryAt: now.Add(p.RetryAfter)}
	}
	why := fmt.Sprintf("step %d (%s on %s): %v", s.Step, s.Command.Type, s.Command.Stream, a.Err)
	switch {
	case s.Undo:
		return record{Kind: recFailed, Error: fmt.Sprintf("undoing %s, after %s", why, c.err)}
	case p.OnFailure == Stop:
		return record{Kind: recFailed, Error: why}
	}
	return record{Kind: recCompensating, Step: s.Step, Error: why}
}

// settle is the record that follows from the instance's state alone, if
// any: done once its steps are and the process said it is over; failed
// once compensation has nothing left to ask or undo.
func (c *core) settle(inFlight int) (record, bool) {
	if c.finished || inFlight > 0 {
		return record{}, false
	}
	switch {
	case c.status == Compensating && c.lastUndoable(len(c.steps)-1) < 0 && !c.has(stepUnresolved):
		return record{Kind: recFailed, Error: c.err}, true
	case c.status != Compensating && c.finish && !c.has(stepPending):
		return record{Kind: recDone}, true
	}
	return record{}, false
}

func (c *core) has(state stepState) bool {
	for i := range c.steps {
		if c.steps[i].State == state {
			return true
		}
	}
	return false
}
