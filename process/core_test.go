package process

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

func cmd(i int) Command {
	return Command{Stream: fmt.Sprintf("todo-%d", i), Type: "Purge", Undo: &Command{Stream: fmt.Sprintf("todo-%d", i), Type: "Restore"}}
}

func cmds(n int) []Command {
	out := make([]Command, n)
	for i := range out {
		out[i] = cmd(i)
	}
	return out
}

// must folds records into c, failing the test on a refused one.
func must(t *testing.T, c *core, recs ...record) {
	t.Helper()
	for _, r := range recs {
		if err := c.apply(r); err != nil {
			t.Fatalf("apply %+v: %v", r, err)
		}
	}
}

func steps(out []send) string {
	var b []string
	for _, s := range out {
		kind := "send"
		if s.Undo {
			kind = "undo"
		} else if s.Probe {
			kind = "probe"
		}
		b = append(b, fmt.Sprintf("%s %d", kind, s.Step))
	}
	return strings.Join(b, ", ")
}

// TestInFlightBound: at most InFlight commands at once, in order; the
// instance is done once every step is and the process said so.
func TestInFlightBound(t *testing.T) {
	p := Policy{InFlight: 2}
	c := newCore()
	d, err := c.decided(7, "", Decision{Commands: cmds(3), Finish: true})
	if err != nil {
		t.Fatal(err)
	}
	must(t, c, d)
	if c.status != Running || !c.takes(8) || c.takes(7) {
		t.Fatalf("status %s, takes(8) %v, takes(7) %v", c.status, c.takes(8), c.takes(7))
	}
	out, _ := c.ready(p, nil, t0)
	if got := steps(out); got != "send 0, send 1" {
		t.Fatalf("first sends: %s", got)
	}
	if out, _ := c.ready(p, map[int]bool{0: true, 1: true}, t0); len(out) != 0 {
		t.Fatalf("sent %s past the bound", steps(out))
	}
	must(t, c, c.outcome(send{Step: 1}, answer{}, p, t0))
	if out, _ := c.ready(p, map[int]bool{0: true}, t0); steps(out) != "send 2" {
		t.Fatalf("after step 1: %s", steps(out))
	}
	must(t, c, c.outcome(send{Step: 0}, answer{}, p, t0))
	if _, ok := c.settle(1); ok {
		t.Fatal("settled with a step in flight")
	}
	must(t, c, c.outcome(send{Step: 2}, answer{}, p, t0))
	r, ok := c.settle(0)
	if !ok || r.Kind != recDone {
		t.Fatalf("settle: %+v %v", r, ok)
	}
	must(t, c, r)
	if out, _ := c.ready(p, nil, t0); c.status != Done || len(out) != 0 || c.takes(9) {
		t.Fatalf("done: status %s, sends %s", c.status, steps(out))
	}
}

// TestRetryThenCompensate: a failed step is sent again after RetryAfter,
// Retries times; then the instance asks whether the steps it gives up were
// taken, undoes the done ones last first, and fails with the step's error.
func TestRetryThenCompensate(t *testing.T) {
	p := Policy{InFlight: 8, Retries: 2, RetryAfter: 30 * time.Minute}
	c := newCore()
	d, _ := c.decided(1, "", Decision{Commands: cmds(4)})
	must(t, c, d)
	must(t, c, c.outcome(send{Step: 0}, answer{}, p, t0), c.outcome(send{Step: 1}, answer{}, p, t0))
	boom := errors.New("the aggregate is busy")
	now := t0
	for attempt := range p.Retries {
		r := c.outcome(send{Step: 2, Command: cmd(2)}, answer{Err: boom}, p, now)
		if r.Kind != recStepFailed || !r.RetryAt.Equal(now.Add(p.RetryAfter)) {
			t.Fatalf("attempt %d: %+v", attempt, r)
		}
		must(t, c, r)
		out, wake := c.ready(p, map[int]bool{3: true}, now)
		if len(out) != 0 || !wake.Equal(now.Add(p.RetryAfter)) {
			t.Fatalf("attempt %d: sent %s before its time, wake %v", attempt, steps(out), wake)
		}
		now = now.Add(p.RetryAfter)
		if out, _ := c.ready(p, map[int]bool{3: true}, now); steps(out) != "send 2" {
			t.Fatalf("attempt %d: at its time: %s", attempt, steps(out))
		}
	}
	r := c.outcome(send{Step: 2, Command: cmd(2)}, answer{Err: boom}, p, now)
	if r.Kind != recCompensating || !strings.Contains(r.Error, "busy") {
		t.Fatalf("the last attempt: %+v", r)
	}
	must(t, c, r)
	if out, _ := c.ready(p, map[int]bool{3: true}, now); len(out) != 0 {
		t.Fatalf("compensating with step 3 in flight: %s", steps(out))
	}
	// Step 3 was in flight: its late answer counts, so it is undone too.
	must(t, c, c.outcome(send{Step: 3}, answer{}, p, now))
	var order []string
	for range 3 {
		out, _ := c.ready(p, nil, now)
		order = append(order, steps(out))
		must(t, c, c.outcome(out[0], answer{}, p, now))
	}
	if got := strings.Join(order, "; "); got != "undo 3; undo 1; undo 0" {
		t.Fatalf("compensation: %s", got)
	}
	r, ok := c.settle(0)
	if !ok || r.Kind != recFailed || !strings.Contains(r.Error, "step 2 (Purge on todo-2)") {
		t.Fatalf("settle: %+v %v", r, ok)
	}
	must(t, c, r)
	if c.status != Failed {
		t.Fatalf("status %s", c.status)
	}
}

// TestProbeBeforeUndo: after a restart nothing is in flight, so the steps
// given up are probed; one taken is undone, one not is abandoned.
func TestProbeBeforeUndo(t *testing.T) {
	p := Policy{InFlight: 4, RetryAfter: time.Minute}
	c := newCore()
	d, _ := c.decided(1, "", Decision{Commands: cmds(4)})
	must(t, c, d, record{Kind: recStepDone, Step: 0},
		record{Kind: recCompensating, Step: 1, Error: "step 1 (Purge on todo-1): refused"})
	out, _ := c.ready(p, nil, t0)
	if got := steps(out); got != "probe 2, probe 3" {
		t.Fatalf("probes: %s", got)
	}
	r := c.outcome(out[0], answer{Err: errors.New("read timed out")}, p, t0)
	must(t, c, r, c.outcome(out[1], answer{Taken: true}, p, t0))
	if out, wake := c.ready(p, nil, t0); len(out) != 0 || !wake.Equal(r.RetryAt) {
		t.Fatalf("undo before every probe answered: %s, wake %v", steps(out), wake)
	}
	out, _ = c.ready(p, nil, r.RetryAt)
	if steps(out) != "probe 2" {
		t.Fatalf("the probe again: %s", steps(out))
	}
	must(t, c, c.outcome(out[0], answer{Taken: false}, p, r.RetryAt))
	var order []string
	for {
		out, _ := c.ready(p, nil, t0)
		if len(out) == 0 {
			break
		}
		order = append(order, steps(out))
		must(t, c, c.outcome(out[0], answer{}, p, t0))
	}
	if got := strings.Join(order, "; "); got != "undo 3; undo 0" {
		t.Fatalf("undo order: %s", got)
	}
	if r, ok := c.settle(0); !ok || r.Kind != recFailed {
		t.Fatalf("settle: %+v", r)
	}
}

func TestOutcomes(t *testing.T) {
	refused := errors.New("refused")
	for _, tc := range []struct {
		name   string
		policy Policy
		prep   func(c *core)
		send   send
		answer answer
		want   recordKind
		says   string
	}{
		{"done", Policy{}, nil, send{Step: 0}, answer{}, recStepDone, ""},
		{"permanent: no retry", Policy{Retries: 3}, nil, send{Step: 0, Command: cmd(0)}, answer{Err: refused, Permanent: true}, recCompensating, "refused"},
		{"stop", Policy{OnFailure: Stop}, nil, send{Step: 0, Command: cmd(0)}, answer{Err: refused}, recFailed, "step 0"},
		{"undo fails for good", Policy{}, func(c *core) {
			must(t, c, record{Kind: recStepDone, Step: 0}, record{Kind: recCompensating, Step: 1, Error: "step 1: x"})
		}, send{Step: 0, Undo: true, Command: *cmd(0).Undo}, answer{Err: refused}, recFailed, "undoing step 0 (Restore on todo-0): refused, after step 1: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore()
			d, _ := c.decided(1, "", Decision{Commands: cmds(2)})
			must(t, c, d)
			if tc.prep != nil {
				tc.prep(c)
			}
			r := c.outcome(tc.send, tc.answer, tc.policy, t0)
			if r.Kind != tc.want || !strings.Contains(r.Error, tc.says) {
				t.Fatalf("%+v, want %s saying %q", r, tc.want, tc.says)
			}
			must(t, c, r)
		})
	}
}

// TestRefusedRecords: a record that does not fit the instance is refused
// and changes nothing.
func TestRefusedRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []record
		bad  record
	}{
		{"done twice", []record{{Kind: recStepDone, Step: 0}}, record{Kind: recStepDone, Step: 0}},
		{"no such step", nil, record{Kind: recStepDone, Step: 5}},
		{"undo while running", []record{{Kind: recStepDone, Step: 0}}, record{Kind: recStepDone, Step: 0, Undo: true}},
		{"undo out of order", []record{{Kind: recStepDone, Step: 0}, {Kind: recStepDone, Step: 1}, {Kind: recCompensating, Step: 2}},
			record{Kind: recStepDone, Step: 0, Undo: true}},
		{"after the end", []record{{Kind: recFailed, Error: "x"}}, record{Kind: recDecided, Position: 9}},
		{"unknown", nil, record{Kind: "Bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore()
			d, _ := c.decided(1, "", Decision{Commands: cmds(3)})
			must(t, c, d)
			must(t, c, tc.recs...)
			before := fmt.Sprintf("%+v", *c)
			if err := c.apply(tc.bad); err == nil {
				t.Fatalf("%+v was taken", tc.bad)
			}
			if after := fmt.Sprintf("%+v", *c); after != before {
				t.Fatalf("a refused record changed the instance:\n%s\n%s", before, after)
			}
		})
	}
}

// TestTimers: due timers by time then name; one taken is cleared, set again
// moves it; the count of timers is bounded.
func TestTimers(t *testing.T) {
	c := newCore()
	d, _ := c.decided(1, "", Decision{Timers: []Timer{{"payment", t0.Add(15 * time.Minute)}, {"b", t0}, {"a", t0}}})
	must(t, c, d)
	if got := c.dueTimers(t0); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("due at t0: %v", got)
	}
	if _, wake := c.ready(Policy{}, nil, t0); !wake.Equal(t0) {
		t.Fatalf("wake %v", wake)
	}
	d, _ = c.decided(0, "a", Decision{Cancel: []string{"b"}, Timers: []Timer{{"payment", t0.Add(20 * time.Minute)}}})
	must(t, c, d)
	if got := c.dueTimers(t0.Add(19 * time.Minute)); len(got) != 0 {
		t.Fatalf("due before the moved deadline: %v", got)
	}
	if got := c.dueTimers(t0.Add(20 * time.Minute)); !slices.Equal(got, []string{"payment"}) {
		t.Fatalf("due at the deadline: %v", got)
	}
	many := make([]Timer, MaxTimers)
	for i := range many {
		many[i] = Timer{Name: fmt.Sprint("t", i), At: t0}
	}
	if _, err := c.decided(2, "", Decision{Timers: many}); !errors.Is(err, ErrLimit) {
		t.Fatalf("%d timers: %v", MaxTimers+1, err)
	}
}

// TestFoldAgain: the records of a run, folded again (a restart), give the
// same instance.
func TestFoldAgain(t *testing.T) {
	p := Policy{InFlight: 3, Retries: 1}
	c := newCore()
	var log []record
	keep := func(r record) { must(t, c, r); log = append(log, r) }
	d, _ := c.decided(4, "", Decision{Commands: cmds(5), Finish: true})
	keep(d)
	keep(c.outcome(send{Step: 1}, answer{}, p, t0))
	keep(c.outcome(send{Step: 0, Command: cmd(0)}, answer{Err: errors.New("busy")}, p, t0))
	again := newCore()
	must(t, again, log...)
	if a, b := fmt.Sprintf("%+v", *c), fmt.Sprintf("%+v", *again); a != b {
		t.Fatalf("folded again:\n%s\nwant\n%s", b, a)
	}
	if again.takes(4) || !again.takes(5) {
		t.Fatal("an event taken before the restart would be taken again")
	}
}

// TestSplit: a decision of many steps is spread over records that each
// fit an event, and folds back to every step in order.
func TestSplit(t *testing.T) {
	c := newCore()
	d, err := c.decided(1, "", Decision{Commands: cmds(2*stepsPerRecord + 34), Finish: true})
	if err != nil {
		t.Fatal(err)
	}
	recs := split([]record{d})
	if len(recs) != 3 || recs[1].Kind != recMoreSteps || len(recs[0].Steps) != stepsPerRecord || len(recs[2].Steps) != 34 {
		t.Fatalf("%d records: %v %v", len(recs), recs[0].Kind, recs[len(recs)-1].Kind)
	}
	must(t, c, recs...)
	if len(c.steps) != 2*stepsPerRecord+34 || c.steps[stepsPerRecord+7].Command.Stream != fmt.Sprint("todo-", stepsPerRecord+7) {
		t.Fatalf("%d steps", len(c.steps))
	}
	if _, err := c.decided(2, "", Decision{Commands: cmds(MaxCommandsPerDecision + 1)}); !errors.Is(err, ErrLimit) {
		t.Fatalf("past the limit: %v", err)
	}
}

// TestRetry: a failed instance retried sends again what is not done: a
// step undone in a new life (its keys spent), one given up with its old
// key; a retry of an instance not failed is refused.
func TestRetry(t *testing.T) {
	p := Policy{InFlight: 8}
	c := newCore()
	d, _ := c.decided(1, "", Decision{Commands: cmds(3), Finish: true})
	must(t, c, d, record{Kind: recStepDone, Step: 0},
		record{Kind: recCompensating, Step: 1, Error: "step 1: refused"},
		record{Kind: recStepAbandoned, Step: 2},
		record{Kind: recStepDone, Step: 0, Undo: true})
	if r, ok := c.settle(0); !ok || r.Kind != recFailed {
		t.Fatalf("settle: %+v", r)
	} else {
		must(t, c, r)
	}
	must(t, c, record{Kind: recRetried, Control: 8})
	if c.status != Running || c.finished || c.err != "" || c.control != 8 {
		t.Fatalf("after the retry: %s finished %v err %q control %d", c.status, c.finished, c.err, c.control)
	}
	out, _ := c.ready(p, nil, t0)
	var gens []string
	for _, s := range out {
		gens = append(gens, fmt.Sprintf("%d/%d", s.Step, s.Gen))
	}
	if got := strings.Join(gens, " "); got != "0/1 1/0 2/0" {
		t.Fatalf("sends (step/gen): %s", got)
	}
	for _, s := range out {
		must(t, c, c.outcome(s, answer{}, p, t0))
	}
	if r, ok := c.settle(0); !ok || r.Kind != recDone {
		t.Fatalf("settle after the retry: %+v", r)
	}
	fresh := newCore()
	must(t, fresh, d)
	if err := fresh.apply(record{Kind: recRetried}); err == nil {
		t.Fatal("a running instance was retried")
	}
}
