// Package processtest tests a process manager's Decide without a store,
// in the shape of the process's own sentences: given these events of the
// instance, when this input, then these commands and timers (and these
// events of the instance).
//
//	purge := processtest.For(t, manager)
//	purge.Given().When(processtest.Event("admin-1", "PurgeRequested", data, now)).
//		Then(process.Decision{Commands: ..., Finish: true})
package processtest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/process"
)

// Spec is the scenarios of one manager in one test.
type Spec[S, E any] struct {
	t testing.TB
	m *process.Manager[S, E]
}

// For returns the scenarios of m, reported to t.
func For[S, E any](t testing.TB, m *process.Manager[S, E]) *Spec[S, E] {
	return &Spec[S, E]{t: t, m: m}
}

// Scenario is one given/when/then test.
type Scenario[S, E any] struct {
	t       testing.TB
	m       *process.Manager[S, E]
	given   []E
	when    process.Input
	hasWhen bool
}

// Given starts a scenario: the instance's stream holds events.
func (s *Spec[S, E]) Given(events ...E) *Scenario[S, E] {
	return &Scenario[S, E]{t: s.t, m: s.m, given: events}
}

// When names the input the scenario decides.
func (s *Scenario[S, E]) When(in process.Input) *Scenario[S, E] {
	s.when, s.hasWhen = in, true
	return s
}

// Event is the input of an event of $all.
func Event(stream, eventType string, data []byte, now time.Time) process.Input {
	return process.Input{Event: &annals.Event{Stream: stream, Type: eventType, Data: data, Recorded: now}, Now: now}
}

// Timer is the input of the timer name firing.
func Timer(name string, now time.Time) process.Input { return process.Input{Timer: name, Now: now} }

type outcome[E any] struct {
	events   []E
	decision process.Decision
	err      error
}

// decide folds the given events and decides the input, twice on two
// folds, to catch a Decide or Evolve that is not pure.
func (s *Scenario[S, E]) decide() (outcome[E], bool) {
	s.t.Helper()
	if !s.hasWhen {
		s.t.Errorf("processtest: a scenario needs When before Then")
		return outcome[E]{}, false
	}
	var got [2]outcome[E]
	for i := range got {
		state := s.m.Initial()
		for _, e := range s.given {
			state = s.m.Evolve(state, e)
		}
		got[i].events, got[i].decision, got[i].err = s.m.Decide(state, s.when)
	}
	if !reflect.DeepEqual(got[0].events, got[1].events) || !reflect.DeepEqual(got[0].decision, got[1].decision) ||
		fmt.Sprint(got[0].err) != fmt.Sprint(got[1].err) {
		s.t.Errorf("processtest: deciding the same input twice on the same events gave two outcomes:\n  %+v\n  %+v", got[0], got[1])
		return outcome[E]{}, false
	}
	return got[0], true
}

// Then checks that the input decides exactly want, and records exactly
// events in the instance's stream.
func (s *Scenario[S, E]) Then(want process.Decision, events ...E) {
	s.t.Helper()
	got, ok := s.decide()
	if !ok {
		return
	}
	if got.err != nil {
		s.t.Errorf("given %d events, when %s:\n  got error %v\n  want %s", len(s.given), describeInput(s.when), got.err, describe(want))
		return
	}
	if !sameDecision(got.decision, want) {
		s.t.Errorf("given %d events, when %s:\n  got  %s\n  want %s", len(s.given), describeInput(s.when), describe(got.decision), describe(want))
	}
	if len(got.events) != len(events) || (len(events) > 0 && !reflect.DeepEqual(got.events, events)) {
		s.t.Errorf("given %d events, when %s:\n  got events  %#v\n  want events %#v", len(s.given), describeInput(s.when), got.events, events)
	}
}

// ThenError checks that Decide fails with an error matching want
// (errors.Is): the instance would fail with it.
func (s *Scenario[S, E]) ThenError(want error) {
	s.t.Helper()
	got, ok := s.decide()
	if ok && !errors.Is(got.err, want) {
		s.t.Errorf("given %d events, when %s:\n  got  %s (error %v)\n  want error %v", len(s.given), describeInput(s.when), describe(got.decision), got.err, want)
	}
}

// sameDecision compares decisions, an empty list and none alike.
func sameDecision(a, b process.Decision) bool {
	norm := func(d process.Decision) process.Decision {
		if len(d.Commands) == 0 {
			d.Commands = nil
		}
		if len(d.Timers) == 0 {
			d.Timers = nil
		}
		if len(d.Cancel) == 0 {
			d.Cancel = nil
		}
		return d
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func describeInput(in process.Input) string {
	if in.Event == nil {
		return fmt.Sprintf("timer %q fires", in.Timer)
	}
	return fmt.Sprintf("%s on %s", in.Event.Type, in.Event.Stream)
}

func describe(d process.Decision) string {
	s := fmt.Sprintf("%d commands", len(d.Commands))
	for _, c := range d.Commands {
		s += fmt.Sprintf("\n    %s on %s %s", c.Type, c.Stream, c.Data)
		if c.Undo != nil {
			s += fmt.Sprintf(" (undo: %s on %s %s)", c.Undo.Type, c.Undo.Stream, c.Undo.Data)
		}
	}
	for _, t := range d.Timers {
		s += fmt.Sprintf("\n    timer %q at %s", t.Name, t.At.Format(time.RFC3339))
	}
	for _, name := range d.Cancel {
		s += fmt.Sprintf("\n    cancel timer %q", name)
	}
	if d.Finish {
		s += "\n    finish"
	}
	return s
}
