package projection

import (
	"errors"
	"time"

	"github.com/annals/annals"
)

// The applier's decisions, as pure functions of what it holds and what
// its transactions answered: which messages a transaction takes and what
// it does with each (txPlan), and what follows a commit or a failure
// (retrier). The I/O (apply, commit) carries them out. Nothing here
// knows the handler: whatever sits where Handle sits (a read model's
// handler, or a reactor that issues commands) is driven the same way.

// item is one event a transaction hands to the handler.
type item struct {
	index  int           // in the messages given
	event  *annals.Event // the message's own, not a copy: a batch holds thousands
	replay bool          // handled before a Reset, or by a builder: Replaying(ctx)
}

// txPlan is what one transaction does with a run of messages.
type txPlan struct {
	// needed: something moves the checkpoint; if not, no transaction.
	needed bool
	// caughtUp: the subscription delivered all history.
	caughtUp bool
	// park: the first message is recorded as parked instead of handled.
	park bool
	// items are the events to handle, in order.
	items []item
	// pos is the checkpoint the transaction stores.
	pos annals.Position
}

// planTx plans a transaction of msgs from checkpoint prev: events at or
// before the checkpoint are skipped, those up to replayUntil are
// replays, and park records msgs[0] (an event past the checkpoint)
// instead of handling it.
func planTx(msgs []annals.Message, prev, replayUntil annals.Position, park bool) txPlan {
	p := txPlan{pos: prev, items: make([]item, 0, len(msgs))}
	for i := range msgs {
		m := &msgs[i]
		switch m.Kind {
		case annals.MessageEvent:
			e := &m.Event
			if e.Position <= p.pos {
				continue // already dealt with: the checkpoint passed it
			}
			p.needed = true
			if park && i == 0 {
				p.park = true
			} else {
				p.items = append(p.items, item{index: i, event: e, replay: e.Position <= replayUntil})
			}
			p.pos = e.Position
		case annals.MessageCheckpoint:
			if m.Position > p.pos {
				p.needed, p.pos = true, m.Position
			}
		case annals.MessageCaughtUp:
			p.caughtUp = true
		}
	}
	return p
}

// runs splits items where the replay flag changes: HandleBatch gets one
// run at a time, under one context.
func runs(items []item) [][]item {
	var out [][]item
	for start := 0; start < len(items); {
		end := start + 1
		for end < len(items) && items[end].replay == items[start].replay {
			end++
		}
		out = append(out, items[start:end])
		start = end
	}
	return out
}

// next is what the applier does next with the messages it holds.
type next struct {
	// wait first (a retry's backoff).
	wait time.Duration
	// n: commit the next n messages (0: all are committed, done).
	n int
	// park: the first of them is parked (after attempts failed attempts
	// with cause), not handled.
	park     bool
	attempts int
	cause    error
	// batched: through HandleBatch (if the projection has one).
	batched bool
	// stop: the error policy gives up (the projection fails) after
	// attempts attempts with cause; abort: the session ends with cause.
	stop, abort bool
}

// retrier applies an ErrorPolicy to a batch: all of it in one
// transaction; or, when the handler fails on one event, the events
// before it in one, then the failing one alone, retried with backoff,
// then parked or the projection stopped; then the rest.
type retrier struct {
	policy ErrorPolicy
	left   int // messages not yet committed
	// attempt counts the failed attempts at the first message left (or
	// at the whole batch); limit is how many the next transaction takes.
	attempt, limit int
	park           bool // the next transaction parks the first message
	lastErr        error
	// batched: hand the events to HandleBatch until it fails; then
	// Handle, one at a time, finds the failing event.
	batched bool
	// prefix: the next transaction takes the events before a failing
	// one; after it, the failing event is first, with attempt attempts.
	prefix bool
}

// newRetrier starts on n messages; the first step is to commit them all.
func newRetrier(policy ErrorPolicy, n int) (*retrier, next) {
	r := &retrier{policy: policy, left: n, limit: n, batched: true}
	return r, r.commit(0)
}

// commit is the step that commits the next transaction after wait.
func (r *retrier) commit(wait time.Duration) next {
	return next{wait: wait, n: min(r.limit, r.left), park: r.park, attempts: r.attempt,
		cause: r.lastErr, batched: r.batched}
}

// committed is the step after the transaction of s committed.
func (r *retrier) committed(s next) next {
	r.batched = true // event by event was only to find the failing event
	r.left -= s.n
	r.limit, r.park = r.left, false
	if r.left == 0 {
		return next{}
	}
	if !r.prefix {
		r.attempt = 0
		return r.commit(0)
	}
	r.prefix, r.limit = false, 1
	if r.attempt > r.policy.MaxRetries {
		return r.giveUp(r.lastErr)
	}
	return r.commit(r.policy.backoff(r.attempt))
}

// failed is the step after the transaction failed with err; failedAt is
// the index of the failing message when err is a *HandlerError.
func (r *retrier) failed(failedAt int, err error) next {
	if _, ok := errors.AsType[*batchError](err); ok && r.batched {
		// Not an attempt: the same transaction again, event by event,
		// tells which event fails (or that none does).
		r.batched = false
		return r.commit(0)
	}
	r.lastErr = err
	if errors.Is(err, ErrCheckpointMoved) {
		// Another writer moved the checkpoint (or a commit whose
		// answer was lost went through): the session resumes from the
		// stored checkpoint.
		return next{abort: true, cause: err}
	}
	r.attempt++
	_, isHandler := errors.AsType[*HandlerError](err)
	if isHandler && failedAt > 0 {
		// The events before the failing one are fine: commit them on
		// their own first. This failure counts as the failing event's
		// first attempt.
		r.limit, r.prefix, r.batched = failedAt, true, true
		return r.commit(0)
	}
	if isHandler {
		r.limit = 1
	}
	if r.attempt > r.policy.MaxRetries {
		if !isHandler || r.park {
			// The target fails, not the event (parking it included):
			// nothing to park.
			return next{stop: true, attempts: r.attempt, cause: err}
		}
		return r.giveUp(err)
	}
	return r.commit(r.policy.backoff(r.attempt))
}

// giveUp applies OnFailure to the first message after attempt failed
// attempts: stop the projection, or park it in the next transaction
// (moving the checkpoint past it).
func (r *retrier) giveUp(err error) next {
	if r.policy.OnFailure != Park {
		return next{stop: true, attempts: r.attempt, cause: err}
	}
	r.park, r.lastErr = true, err
	return r.commit(0)
}
