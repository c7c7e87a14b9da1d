package processtest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/process"
	"github.com/annals/annals/process/processtest"
)

type paid struct{}

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

var errUnknown = errors.New("unknown event")

// seats waits 15 minutes for the payment of a reservation.
func seats() *process.Manager[bool, paid] {
	c := codec.New[paid](codec.Options{})
	codec.MustRegister[paid](c, "Paid")
	return &process.Manager[bool, paid]{
		Name:      "seats",
		Correlate: func(e annals.Event) (string, bool) { return e.Stream, true },
		Initial:   func() bool { return false },
		Evolve:    func(bool, paid) bool { return true },
		Decide: func(isPaid bool, in process.Input) ([]paid, process.Decision, error) {
			release := process.Command{Stream: "show-1", Type: "Release"}
			switch {
			case in.Timer == "payment" && !isPaid:
				return nil, process.Decision{Commands: []process.Command{release}, Finish: true}, nil
			case in.Event != nil && in.Event.Type == "SeatsReserved":
				return nil, process.Decision{Timers: []process.Timer{{Name: "payment", At: in.Now.Add(15 * time.Minute)}}}, nil
			case in.Event != nil && in.Event.Type == "PaymentConfirmed":
				return []paid{{}}, process.Decision{Cancel: []string{"payment"}, Finish: true}, nil
			}
			return nil, process.Decision{}, fmt.Errorf("%w: %+v", errUnknown, in)
		},
		Codec: c,
	}
}

func TestScenarios(t *testing.T) {
	spec := processtest.For(t, seats())
	spec.Given().When(processtest.Event("reservation-1", "SeatsReserved", nil, now)).
		Then(process.Decision{Timers: []process.Timer{{Name: "payment", At: now.Add(15 * time.Minute)}}})
	spec.Given().When(processtest.Timer("payment", now)).
		Then(process.Decision{Commands: []process.Command{{Stream: "show-1", Type: "Release"}}, Finish: true})
	spec.Given().When(processtest.Event("reservation-1", "PaymentConfirmed", nil, now)).
		Then(process.Decision{Cancel: []string{"payment"}, Finish: true}, paid{})
	spec.Given().When(processtest.Event("reservation-1", "Bogus", nil, now)).ThenError(errUnknown)
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

// TestFailures: a wrong expectation fails, and says what was decided.
func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(*processtest.Spec[bool, paid])
		says string
	}{
		{"other commands", func(s *processtest.Spec[bool, paid]) {
			s.Given().When(processtest.Timer("payment", now)).Then(process.Decision{Finish: true})
		}, "Release on show-1"},
		{"given changes the outcome", func(s *processtest.Spec[bool, paid]) {
			s.Given(paid{}).When(processtest.Timer("payment", now)).Then(process.Decision{Finish: true})
		}, "unknown event"},
		{"missing events", func(s *processtest.Spec[bool, paid]) {
			s.Given().When(processtest.Event("r", "PaymentConfirmed", nil, now)).Then(process.Decision{Cancel: []string{"payment"}, Finish: true})
		}, "want events"},
		{"no error", func(s *processtest.Spec[bool, paid]) {
			s.Given().When(processtest.Timer("payment", now)).ThenError(errUnknown)
		}, "want error"},
		{"no when", func(s *processtest.Spec[bool, paid]) { s.Given().Then(process.Decision{}) }, "needs When"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			tc.run(processtest.For(r, seats()))
			if len(r.failures) != 1 || !strings.Contains(r.failures[0], tc.says) {
				t.Errorf("failures %q, want one saying %q", r.failures, tc.says)
			}
		})
	}
}
