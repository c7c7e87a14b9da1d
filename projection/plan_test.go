package projection

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/annals/annals"
)

func evMsg(pos annals.Position) annals.Message {
	return annals.Message{Kind: annals.MessageEvent, Event: annals.Event{Position: pos}}
}

// A transaction skips what the checkpoint passed, takes the positions of
// the store's checkpoints, parks its first event if asked, and marks the
// replays.
func TestPlanTx(t *testing.T) {
	msgs := []annals.Message{evMsg(4), evMsg(5), {Kind: annals.MessageCheckpoint, Position: 9}, evMsg(10),
		evMsg(11), {Kind: annals.MessageCaughtUp}}
	p := planTx(msgs, 4, 10, false)
	var got []string
	for _, it := range p.items {
		got = append(got, fmt.Sprintf("%d@%d/%v", it.event.Position, it.index, it.replay))
	}
	if want := []string{"5@1/true", "10@3/true", "11@4/false"}; !p.needed || !p.caughtUp || p.park ||
		p.pos != 11 || !slices.Equal(got, want) {
		t.Fatalf("plan %+v, items %v; want items %v to 11, caught up", p, got, want)
	}
	if n := len(runs(p.items)); n != 2 {
		t.Fatalf("%d runs of the replay flag, want 2", n)
	}
	p = planTx(msgs[1:3], 4, 0, true)
	if !p.park || len(p.items) != 0 || p.pos != 9 {
		t.Fatalf("parking 5: %+v", p)
	}
	if p = planTx(msgs[:1], 4, 0, false); p.needed || p.pos != 4 {
		t.Fatalf("nothing past the checkpoint: %+v", p)
	}
}

var (
	errTarget = errors.New("target down")
	errEvent  = &HandlerError{Position: 3, Err: errors.New("bad")}
)

// outcome is what a transaction answered: nil, or err, failing at index.
type outcome struct {
	at  int
	err error
}

// steps feeds the retrier the outcomes and returns its steps, written
// as "wait/n/park/batched", "stop/attempts", "abort" or "done".
func steps(policy ErrorPolicy, n int, outcomes ...outcome) []string {
	r, s := newRetrier(policy.withDefaults(), n)
	var out []string
	for _, o := range outcomes {
		out = append(out, fmt.Sprintf("%v/%d/%v/%v", s.wait, s.n, s.park, s.batched))
		if o.err == nil {
			s = r.committed(s)
		} else {
			s = r.failed(o.at, o.err)
		}
		switch {
		case s.stop:
			return append(out, fmt.Sprintf("stop/%d", s.attempts))
		case s.abort:
			return append(out, "abort")
		case s.n == 0:
			return append(out, "done")
		}
	}
	return append(out, fmt.Sprintf("%v/%d/%v/%v", s.wait, s.n, s.park, s.batched))
}

func TestRetrier(t *testing.T) {
	ms := time.Millisecond
	stop := ErrorPolicy{MaxRetries: 2, Backoff: ms}
	park := ErrorPolicy{MaxRetries: 1, Backoff: ms, OnFailure: Park}
	for _, tc := range []struct {
		name   string
		policy ErrorPolicy
		n      int
		got    []outcome
		want   []string
	}{
		{"one transaction", stop, 5, []outcome{{}}, []string{"0s/5/false/true", "done"}},
		{"a failing batch handler is not an attempt", stop, 5,
			[]outcome{{err: &batchError{err: errTarget}}, {}},
			[]string{"0s/5/false/true", "0s/5/false/false", "done"}},
		{"the events before a failing one first, then it alone, then the rest", stop, 5,
			[]outcome{{at: 3, err: errEvent}, {}, {}, {}},
			[]string{"0s/5/false/true", "0s/3/false/true", "1ms/1/false/true", "0s/1/false/true", "done"}},
		{"the events before the event found go back to the batch handler", stop, 5,
			[]outcome{{err: &batchError{err: errTarget}}, {at: 2, err: errEvent}, {}},
			[]string{"0s/5/false/true", "0s/5/false/false", "0s/2/false/true", "1ms/1/false/true"}},
		{"a failing event stops the projection after its retries", stop, 5,
			[]outcome{{at: 0, err: errEvent}, {err: errEvent}, {err: errEvent}},
			[]string{"0s/5/false/true", "1ms/1/false/true", "2ms/1/false/true", "stop/3"}},
		{"or is parked, and the rest goes on", park, 5,
			[]outcome{{at: 2, err: errEvent}, {}, {err: errEvent}, {}, {}},
			[]string{"0s/5/false/true", "0s/2/false/true", "1ms/1/false/true", "0s/1/true/true", "0s/2/false/true", "done"}},
		{"a failing park stops it", park, 1,
			[]outcome{{err: errEvent}, {err: errEvent}, {err: errTarget}},
			[]string{"0s/1/false/true", "1ms/1/false/true", "0s/1/true/true", "stop/3"}},
		{"a failing target is retried as a whole, never parked", park, 5,
			[]outcome{{err: errTarget}, {err: errTarget}},
			[]string{"0s/5/false/true", "1ms/5/false/true", "stop/2"}},
		{"a moved checkpoint ends the session", stop, 5,
			[]outcome{{err: fmt.Errorf("x: %w", ErrCheckpointMoved)}}, []string{"0s/5/false/true", "abort"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := steps(tc.policy, tc.n, tc.got...); !slices.Equal(got, tc.want) {
				t.Fatalf("steps %q, want %q", got, tc.want)
			}
		})
	}
}
