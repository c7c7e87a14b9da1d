package commandtest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/annals/annals/command"
	"github.com/annals/annals/command/commandtest"
)

type counter struct{ N, Max int }

type add struct{ N int }

type added struct{ N int }

var errTooMany = errors.New("too many")

var counterDecider = command.Decider[counter, add, added]{
	Initial: func() counter { return counter{Max: 5} },
	Evolve:  func(c counter, e added) counter { c.N += e.N; return c },
	Decide: func(c counter, a add) ([]added, error) {
		if a.N == 0 {
			return nil, nil
		}
		if c.N+a.N > c.Max {
			return nil, fmt.Errorf("%w: %d + %d > %d", errTooMany, c.N, a.N, c.Max)
		}
		return []added{{a.N}}, nil
	},
}

func TestScenarios(t *testing.T) {
	commandtest.For(t, counterDecider).Given().When(add{2}).Then(added{2})
	commandtest.For(t, counterDecider).Given(added{2}, added{2}).When(add{2}).ThenError(errTooMany)
	commandtest.For(t, counterDecider).Given(added{4}).When(add{0}).Then()
	commandtest.For(t, counterDecider).Given(added{1}).When(add{3}).ThenState(func(c counter) string {
		if c.N != 4 {
			return fmt.Sprintf("N = %d, want 4", c.N)
		}
		return ""
	})
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

// Scenarios that do not hold fail, saying what happened.
func TestScenariosFail(t *testing.T) {
	impure := counterDecider
	calls := 0
	impure.Decide = func(c counter, a add) ([]added, error) { calls++; return []added{{calls}}, nil }
	cases := []struct {
		name string
		run  func(tb testing.TB)
		want string
	}{
		{"other events", func(tb testing.TB) { commandtest.For(tb, counterDecider).Given().When(add{2}).Then(added{3}) }, "want events [commandtest_test.added{N:3}]"},
		{"events, not none", func(tb testing.TB) { commandtest.For(tb, counterDecider).Given().When(add{2}).Then() }, "want no events"},
		{"error, not events", func(tb testing.TB) { commandtest.For(tb, counterDecider).Given(added{5}).When(add{1}).Then(added{1}) }, "got error too many"},
		{"events, not error", func(tb testing.TB) { commandtest.For(tb, counterDecider).Given().When(add{1}).ThenError(errTooMany) }, "want error too many"},
		{"other error", func(tb testing.TB) {
			commandtest.For(tb, counterDecider).Given(added{5}).When(add{1}).ThenError(errors.New("too many"))
		}, "want error too many"},
		{"state", func(tb testing.TB) {
			commandtest.For(tb, counterDecider).Given().When(add{1}).ThenState(func(counter) string { return "wrong" })
		}, "the state: wrong"},
		{"impure", func(tb testing.TB) { commandtest.For(tb, impure).Given().When(add{1}).Then(added{1}) }, "two outcomes"},
		{"no when", func(tb testing.TB) { commandtest.For(tb, counterDecider).Given().Then() }, "needs When"},
	}
	for _, c := range cases {
		r := &recorder{TB: t}
		c.run(r)
		if len(r.failures) != 1 || !strings.Contains(r.failures[0], c.want) {
			t.Errorf("%s: failures %q, want one containing %q", c.name, r.failures, c.want)
		}
	}
}
