package process

import (
	"fmt"
	"time"

	"github.com/annals/annals"
)

// recordKind names a record of an instance's stream.
type recordKind string

const (
	// recDecided: the process took an input (an event at Position, or the
	// timer Timer fired) and decided: new steps, timers set and cancelled,
	// and whether it is over once its steps are done.
	recDecided recordKind = "Decided"
	// recMoreSteps: more steps of the decision before it, in the same
	// append (a decision's steps go stepsPerRecord to a record, so that
	// each record stays within the store's event size).
	recMoreSteps recordKind = "MoreSteps"
	// recStepDone: the aggregate took step Step (or its undo, with Undo).
	recStepDone recordKind = "StepDone"
	// recStepFailed: an attempt of step Step (or its undo) failed with
	// Error; it is sent again at RetryAt.
	recStepFailed recordKind = "StepFailed"
	// recStepAbandoned: the aggregate had not taken step Step, which the
	// instance gave up when it began to compensate.
	recStepAbandoned recordKind = "StepAbandoned"
	// recCompensating: step Step failed for good with Error; the
	// instance undoes its done steps.
	recCompensating recordKind = "Compensating"
	// recFailed: the instance failed with Error, for good.
	recFailed recordKind = "Failed"
	// recDone: every step is done and the process said it is over.
	recDone recordKind = "Done"
	// recRetried: an operator retried the failed instance: the steps not
	// done are to be sent again (those undone in a new life, with new
	// keys), and the instance runs again.
	recRetried recordKind = "Retried"
)

// record is one entry of an instance's stream, as the core folds it.
type record struct {
	Kind     recordKind      `json:"kind"`
	Position annals.Position `json:"position,omitempty"`
	Timer    string          `json:"timer,omitempty"`
	Steps    []Command       `json:"steps,omitempty"`
	Set      []Timer         `json:"set,omitempty"`
	Cancel   []string        `json:"cancel,omitempty"`
	Finish   bool            `json:"finish,omitempty"`
	Step     int             `json:"step,omitempty"`
	Undo     bool            `json:"undo,omitempty"`
	Error    string          `json:"error,omitempty"`
	RetryAt  time.Time       `json:"retryAt,omitzero"`
	// Control is one past the revision of the control event that caused
	// the record (a retry, an abandon), 0 for the others.
	Control uint64 `json:"control,omitempty"`
}

// apply folds r into c. A record that does not fit c is refused: the
// stream was written by another program, or a bug wrote it.
func (c *core) apply(r record) error {
	if c.finished && !(r.Kind == recRetried && c.status == Failed) {
		return fmt.Errorf("process: a %s record after the instance finished", r.Kind)
	}
	if r.Control > 0 {
		c.control = max(c.control, r.Control)
	}
	var err error
	switch r.Kind {
	case recDecided:
		c.applyDecided(r)
	case recMoreSteps:
		if c.status != Running {
			return fmt.Errorf("process: more steps in status %s", c.status)
		}
		for _, cmd := range r.Steps {
			c.steps = append(c.steps, step{Command: cmd})
		}
	case recStepDone:
		err = c.applyStepDone(r)
	case recStepFailed:
		err = c.applyStepFailed(r)
	case recStepAbandoned:
		err = c.applyStepAbandoned(r)
	case recCompensating:
		err = c.startUndo(r)
	case recFailed:
		c.status, c.err, c.finished = Failed, r.Error, true
		for i := range c.steps {
			if c.steps[i].State == stepPending {
				c.steps[i].State = stepAbandoned
			}
		}
	case recDone:
		c.status, c.finished = Done, true
	case recRetried:
		if !c.finished {
			return fmt.Errorf("process: a retry of an instance %s", c.status)
		}
		c.retry()
	default:
		err = fmt.Errorf("process: unknown record %q", r.Kind)
	}
	if err != nil {
		return err
	}
	c.check()
	return nil
}

func (c *core) applyDecided(r record) {
	if r.Position > c.handled {
		c.handled = r.Position
	}
	delete(c.timers, r.Timer)
	for _, name := range r.Cancel {
		delete(c.timers, name)
	}
	for _, t := range r.Set {
		c.timers[t.Name] = t.At
	}
	for _, cmd := range r.Steps {
		c.steps = append(c.steps, step{Command: cmd})
	}
	c.finish = c.finish || r.Finish
	c.status = c.activity()
}

func (c *core) applyStepDone(r record) error {
	s, err := c.stepOf(r)
	if err != nil {
		return err
	}
	s.Attempts, s.RetryAt, s.Err = 0, time.Time{}, ""
	if r.Undo {
		s.State = stepUndone
		return nil
	}
	s.State = stepDone
	if c.status != Compensating {
		c.status = c.activity()
	}
	return nil
}

func (c *core) applyStepFailed(r record) error {
	s, err := c.stepOf(r)
	if err != nil {
		return err
	}
	s.Attempts, s.RetryAt, s.Err = s.Attempts+1, r.RetryAt, r.Error
	return nil
}

// stepOf is the step r answers, if it is waiting for that answer: a
// pending step; while compensating, a step given up whose command was in
// flight (its late answer), or the undo of the last done step.
func (c *core) stepOf(r record) (*step, error) {
	if r.Step < 0 || r.Step >= len(c.steps) {
		return nil, fmt.Errorf("process: %s of step %d, of %d steps", r.Kind, r.Step, len(c.steps))
	}
	s := &c.steps[r.Step]
	switch {
	case r.Undo && c.status == Compensating && r.Step == c.lastUndoable(len(c.steps)-1):
	case r.Undo:
		return nil, fmt.Errorf("process: %s of the undo of step %d, which is not being undone", r.Kind, r.Step)
	case s.State == stepPending && r.Kind != recStepAbandoned,
		s.State == stepUnresolved && !r.Undo: // a probe's answer, or its failure
	default:
		return nil, fmt.Errorf("process: %s of step %d, which is answered", r.Kind, r.Step)
	}
	return s, nil
}

func (c *core) applyStepAbandoned(r record) error {
	s, err := c.stepOf(r)
	if err != nil {
		return err
	}
	s.State = stepAbandoned
	return nil
}

// startUndo begins compensation after step r.Step failed for good: that
// step was not taken; those pending may have been.
func (c *core) startUndo(r record) error {
	if c.status == Compensating || r.Step < 0 || r.Step >= len(c.steps) || c.steps[r.Step].State != stepPending {
		return fmt.Errorf("process: compensating for step %d, which is not pending", r.Step)
	}
	c.status, c.err = Compensating, r.Error
	c.steps[r.Step].State = stepAbandoned
	for i := range c.steps {
		if c.steps[i].State == stepPending {
			c.steps[i].State = stepUnresolved
		}
	}
	return nil
}

// lastUndoable is the last done step with an undo at or before i, or -1.
func (c *core) lastUndoable(i int) int {
	for ; i >= 0; i-- {
		if c.steps[i].State == stepDone && c.steps[i].Command.Undo != nil {
			return i
		}
	}
	return -1
}

// activity is Running while a step is pending, else Waiting.
func (c *core) activity() Status {
	for i := range c.steps {
		if c.steps[i].State == stepPending {
			return Running
		}
	}
	return Waiting
}

// retry runs a failed instance again: a step undone is to be taken again
// in a new life (new keys: its old keys are spent on the taking and the
// undoing); a step given up or never answered is sent again with its old
// key, which the aggregate recognises if it took it after all.
func (c *core) retry() {
	for i := range c.steps {
		s := &c.steps[i]
		switch s.State {
		case stepUndone:
			s.State, s.Gen = stepPending, s.Gen+1
		case stepAbandoned, stepUnresolved:
			s.State = stepPending
		}
		s.Attempts, s.RetryAt, s.Err = 0, time.Time{}, ""
	}
	c.finished, c.err = false, ""
	c.status = c.activity()
}
