// Package commandtest tests deciders without a store, in the shape of the
// domain's own sentences: given these events, when this command, then
// these events (or this error).
//
//	conference := commandtest.For(t, seats.Decider)
//	conference.Given(seats.ConferenceOpened{Capacity: 2}).
//		When(seats.Reserve{Reservation: "r1", Seats: 3}).
//		ThenError(seats.ErrNotEnoughSeats)
package commandtest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/annals/annals/command"
)

// Scenario is one given/when/then test of a decider.
type Scenario[S, C, E any] struct {
	t       testing.TB
	decider command.Decider[S, C, E]
	given   []E
	when    C
	hasWhen bool
}

// Spec is the scenarios of one decider in one test.
type Spec[S, C, E any] struct {
	t       testing.TB
	decider command.Decider[S, C, E]
}

// For returns the scenarios of decider d, reported to t.
func For[S, C, E any](t testing.TB, d command.Decider[S, C, E]) *Spec[S, C, E] {
	return &Spec[S, C, E]{t: t, decider: d}
}

// Given starts a scenario: the stream holds events.
func (s *Spec[S, C, E]) Given(events ...E) *Scenario[S, C, E] {
	return &Scenario[S, C, E]{t: s.t, decider: s.decider, given: events}
}

// When names the command the scenario decides.
func (s *Scenario[S, C, E]) When(cmd C) *Scenario[S, C, E] {
	s.when, s.hasWhen = cmd, true
	return s
}

// decide folds the given events and decides the command. It decides twice
// on two folds, to catch a Decide or Evolve that is not pure (that
// changes the state it is given, or depends on anything but its input).
func (s *Scenario[S, C, E]) decide() (events []E, err error, ok bool) {
	s.t.Helper()
	if !s.hasWhen {
		s.t.Errorf("commandtest: a scenario needs When before Then")
		return nil, nil, false
	}
	events, err = s.decider.Decide(s.decider.Fold(s.given...), s.when)
	again, errAgain := s.decider.Decide(s.decider.Fold(s.given...), s.when)
	if !reflect.DeepEqual(events, again) || errText(err) != errText(errAgain) {
		s.t.Errorf("commandtest: deciding %T twice on the same events gave two outcomes:\n  %s\n  %s",
			s.when, describe(events, err), describe(again, errAgain))
		return nil, nil, false
	}
	return events, err, true
}

// Then checks that the command decides exactly want (none: nothing to do).
func (s *Scenario[S, C, E]) Then(want ...E) {
	s.t.Helper()
	got, err, ok := s.decide()
	if !ok {
		return
	}
	if err != nil {
		s.t.Errorf("given %d events, when %#v:\n  got error %v\n  want %s", len(s.given), s.when, err, describe(want, nil))
		return
	}
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
		s.t.Errorf("given %d events, when %#v:\n  got  %s\n  want %s", len(s.given), s.when, describe(got, nil), describe(want, nil))
	}
}

// ThenError checks that the command is refused with an error that matches
// want (errors.Is).
func (s *Scenario[S, C, E]) ThenError(want error) {
	s.t.Helper()
	got, err, ok := s.decide()
	if !ok {
		return
	}
	if !errors.Is(err, want) {
		s.t.Errorf("given %d events, when %#v:\n  got  %s\n  want error %v", len(s.given), s.when, describe(got, err), want)
	}
}

// ThenState checks the state after the given events and the events the
// command decides, with check returning what is wrong ("" if nothing).
func (s *Scenario[S, C, E]) ThenState(check func(S) string) {
	s.t.Helper()
	got, err, ok := s.decide()
	if !ok {
		return
	}
	if err != nil {
		s.t.Errorf("given %d events, when %#v: got error %v, want events", len(s.given), s.when, err)
		return
	}
	state := s.decider.Fold(append(append([]E(nil), s.given...), got...)...)
	if msg := check(state); msg != "" {
		s.t.Errorf("given %d events, when %#v, the state: %s", len(s.given), s.when, msg)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func describe[E any](events []E, err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	if len(events) == 0 {
		return "no events"
	}
	parts := make([]string, len(events))
	for i, e := range events {
		parts[i] = fmt.Sprintf("%#v", e)
	}
	return "events [" + strings.Join(parts, ", ") + "]"
}
