package projection

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/backoff"
)

// batchError is HandleBatch's failure: the batch is applied again one
// event at a time, to find the event at fault.
type batchError struct{ err error }

func (e *batchError) Error() string {
	return fmt.Sprintf("projection: batch handler: %v", e.err)
}

func (e *batchError) Unwrap() error { return e.err }

// errRestart ends a session after a reset: Run starts another from the
// new checkpoint.
var errRestart = errors.New("projection: restart from the checkpoint")

// errSubscriptionEnded: the store's subscription returned without error,
// which a catch-up subscription never does while its context lives.
var errSubscriptionEnded = errors.New("projection: subscription ended")

// session loads the checkpoint, subscribes from the next position and
// applies batches until ctx ends, a reset restarts it, or an error.
func (p *Projector[M]) session(ctx context.Context) error {
	if err := p.load(ctx); err != nil {
		return err
	}
	if err := p.setup(ctx); err != nil {
		return err
	}
	from := p.Position() + 1

	sctx, cancel := context.WithCancel(ctx)
	msgs := make(chan annals.Message, p.opts.BatchEvents)
	readDone := make(chan struct{})
	var readErr error
	go func() {
		defer close(readDone)
		readErr = p.read(sctx, from, msgs)
	}()
	defer func() {
		cancel()
		<-readDone
	}()

	batch := make([]annals.Message, 0, p.opts.BatchEvents)
	for {
		if err := p.waitWhilePaused(ctx); err != nil {
			return err
		}
		if len(batch) == 0 {
			ready, built := p.rebuildSignals()
			select {
			case m := <-msgs:
				batch = append(batch, m)
			case <-readDone:
				if readErr == nil {
					readErr = errSubscriptionEnded
				}
				return readErr
			case req := <-p.requests:
				if err := p.serve(ctx, req); err != nil {
					return err
				}
				continue
			case <-ready:
				if err := p.finishRebuild(ctx); err != nil {
					continue // given up and noted; the active generation goes on
				}
				return errRestart
			case <-built:
				p.rebuildEnded()
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Pause takes effect before anything more is applied; the batch
		// in hand waits (it is at most BatchEvents messages).
		if err := p.waitWhilePaused(ctx); err != nil {
			return err
		}
	drain:
		for len(batch) < p.opts.BatchEvents {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		n := p.applicable(batch)
		if n == 0 {
			// A rebuild's builder at its parent's position: it has
			// applied all the parent has, so the parent may finish the
			// rebuild (even if both lag behind the head); or wait for
			// the parent to move.
			p.parent.builderReady()
			if err := p.waitForParent(ctx); err != nil {
				return err
			}
			continue
		}
		if err := p.apply(ctx, batch[:n]); err != nil {
			return err
		}
		rest := copy(batch, batch[n:])
		clear(batch[rest:])
		batch = batch[:rest]
	}
}

// serve runs a writer's request in the applier.
func (p *Projector[M]) serve(ctx context.Context, req request) error {
	err := req.do(ctx)
	req.done <- err
	switch {
	case err == nil && req.restart:
		return errRestart
	case err != nil && (req.restart || errors.Is(err, ErrCheckpointMoved)):
		return err
	}
	return nil
}

// setup runs Projection.Setup in a transaction of its own when the
// projector starts from position 0, storing the checkpoint 0 with it, so
// that queries find the model's tables before the first event.
func (p *Projector[M]) setup(ctx context.Context) error {
	setup := p.def().Setup
	if setup == nil || p.Position() != 0 {
		return nil
	}
	tx, err := p.target.Begin(ctx, p.slot())
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := setup(ctx, tx.Model()); err != nil {
		return fmt.Errorf("projection %s: setup: %w", p.name, err)
	}
	p.mu.Lock()
	parked := p.parked
	p.mu.Unlock()
	if err := tx.SaveCheckpoint(ctx, 0, Checkpoint{Parked: parked}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// waitWhilePaused blocks while the projector is paused; requests (a
// reset, a replay of parked events) are served even then.
func (p *Projector[M]) waitWhilePaused(ctx context.Context) error {
	for {
		p.mu.Lock()
		paused, resumed := p.paused, p.resumed
		p.mu.Unlock()
		if !paused {
			return nil
		}
		select {
		case <-resumed:
		case req := <-p.requests:
			if err := p.serve(ctx, req); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read feeds msgs from a catch-up subscription of $all starting at from.
func (p *Projector[M]) read(ctx context.Context, from uint64, msgs chan<- annals.Message) error {
	opts := annals.SubscribeAllOptions{From: from, Filter: p.def().Filter}
	for m, err := range p.store.SubscribeToAll(ctx, opts) {
		if err != nil {
			return err
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// apply applies msgs, in as few transactions as the error policy allows:
// all in one; or, when the handler fails on one event, the events before
// it in one, then the failing one alone, retried with backoff, then
// parked or the projection stopped; then the rest.
func (p *Projector[M]) apply(ctx context.Context, msgs []annals.Message) error {
	attempt := 0          // attempts at msgs[0] (or at the whole batch)
	limit := len(msgs)    // how many of msgs the next transaction takes
	var park *ParkedEvent // set: the next transaction parks msgs[0]
	var lastErr error
	// batched: hand the events to HandleBatch, until it fails; then
	// Handle, one at a time, finds the failing event.
	batched := true
	// prefix: the next transaction takes the events before a failing
	// one; after it, the failing event is msgs[0] and has had attempt
	// attempts already.
	prefix := false
	for len(msgs) > 0 {
		n := min(limit, len(msgs))
		failedAt, err := p.commit(ctx, msgs[:n], park, batched)
		if err == nil {
			if park != nil {
				p.log.Warn("projection parked an event", "position", park.Position,
					"stream", park.Stream, "type", park.Type, "attempts", park.Attempts, "err", park.Error)
			}
			// Event by event was only to find the failing event.
			batched = true
			msgs = msgs[n:]
			limit, park = len(msgs), nil
			if !prefix {
				attempt = 0
				continue
			}
			prefix = false
			limit = 1
			if attempt > p.policy.MaxRetries {
				if park, err = p.giveUp(msgs[0].Event, attempt, lastErr); err != nil {
					return err
				}
				continue
			}
			if err := backoff.Sleep(ctx, p.policy.backoff(attempt)); err != nil {
				return err
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if be, ok := errors.AsType[*batchError](err); ok && batched {
			// Not an attempt: the same transaction again, event by
			// event, tells which event fails (or that none does).
			p.noteError(be.err)
			batched = false
			continue
		}
		p.noteError(err)
		lastErr = err
		if errors.Is(err, ErrCheckpointMoved) {
			// Another writer moved the checkpoint (or a commit whose
			// answer was lost went through): end the session, and Run
			// resumes from the stored checkpoint.
			return err
		}
		attempt++
		var he *HandlerError
		isHandler := errors.As(err, &he)
		if isHandler && failedAt > 0 {
			// The events before the failing one are fine: commit them
			// on their own first. This failure counts as the failing
			// event's first attempt.
			limit, prefix = failedAt, true
			batched = true // the events before it go back to HandleBatch
			continue
		}
		if isHandler {
			limit = 1
		}
		if attempt > p.policy.MaxRetries {
			if !isHandler || park != nil {
				// The target fails, not the event (parking it
				// included): nothing to park.
				return &FailedError{Name: p.name, Position: p.Position(), Attempts: attempt, Err: err}
			}
			if park, err = p.giveUp(msgs[0].Event, attempt, err); err != nil {
				return err
			}
			continue
		}
		if err := backoff.Sleep(ctx, p.policy.backoff(attempt)); err != nil {
			return err
		}
	}
	return nil
}

// giveUp applies OnFailure to e after attempt failed attempts: the
// *FailedError that stops the projection, or the parked event the next
// transaction records (moving the checkpoint past e).
func (p *Projector[M]) giveUp(e annals.Event, attempt int, err error) (*ParkedEvent, error) {
	if p.policy.OnFailure != Park {
		return nil, &FailedError{Name: p.name, Position: p.Position(), Attempts: attempt, Err: err}
	}
	msg := err.Error()
	if he, ok := errors.AsType[*HandlerError](err); ok {
		msg = he.Err.Error()
	}
	return &ParkedEvent{Position: e.Position, EventID: e.ID, Stream: e.Stream, Type: e.Type,
		Error: truncate(msg), Attempts: attempt, ParkedAt: p.opts.Now().UTC()}, nil
}

// commit applies msgs in one transaction with the checkpoint of the last
// one. If park is set, msgs[0] is that event, recorded instead of handled.
// When the handler fails it returns the index of the failing message and
// a *HandlerError; the transaction is rolled back.
func (p *Projector[M]) commit(ctx context.Context, msgs []annals.Message, park *ParkedEvent, batched bool) (int, error) {
	// The applier is the only writer of all this: one look suffices.
	p.mu.Lock()
	prev, parkedBefore, replayUntil := p.position, p.parked, p.replayUntil
	slot, def := slotName(p.name, p.gen), p.proj
	p.mu.Unlock()
	pos := prev
	var applied, parked uint64
	caughtUp := false
	needed := false
	for _, m := range msgs {
		switch m.Kind {
		case annals.MessageEvent:
			needed = needed || m.Event.Position > prev
		case annals.MessageCheckpoint:
			needed = needed || m.Position > prev
		case annals.MessageCaughtUp:
			caughtUp = true
		}
	}
	if !needed {
		p.caughtUp(caughtUp)
		return 0, nil
	}
	tx, err := p.target.Begin(ctx, slot)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	model := tx.Model()
	if p.parent != nil {
		// A builder applies only what its parent has applied.
		replayUntil = math.MaxUint64
	}
	// The replaying context is made only if an event needs it.
	var replayCtx context.Context
	handlerCtx := func(replay bool) context.Context {
		if !replay {
			return ctx
		}
		if replayCtx == nil {
			replayCtx = withReplaying(ctx, true)
		}
		return replayCtx
	}
	// With HandleBatch, the events go to it in runs of the same replay
	// flag; pending is the run not yet handed over.
	batched = batched && def.HandleBatch != nil
	var pending []annals.Event
	pendingReplay := false
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := def.HandleBatch(handlerCtx(pendingReplay), model, pending); err != nil {
			return &batchError{err: err}
		}
		applied += uint64(len(pending))
		pending = pending[:0]
		return nil
	}
	for i, m := range msgs {
		switch m.Kind {
		case annals.MessageEvent:
			e := m.Event
			if e.Position <= pos {
				// Already dealt with: the checkpoint passed it.
				continue
			}
			if park != nil && i == 0 {
				if err := tx.Park(ctx, *park); err != nil {
					return 0, err
				}
				parked++
			} else if replay := e.Position <= replayUntil; batched {
				if len(pending) > 0 && replay != pendingReplay {
					if err := flush(); err != nil {
						return 0, err
					}
				}
				pendingReplay = replay
				pending = append(pending, e)
			} else {
				if err := def.Handle(handlerCtx(replay), model, e); err != nil {
					return i, &HandlerError{Position: e.Position, Stream: e.Stream, Type: e.Type, Err: err}
				}
				applied++
			}
			pos = e.Position
		case annals.MessageCheckpoint:
			pos = max(pos, m.Position)
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	total := parkedBefore + parked
	if err := tx.SaveCheckpoint(ctx, prev, Checkpoint{Position: pos, Parked: total}); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		// The commit's outcome is unknown (its answer may be lost): the
		// stored checkpoint tells. If it moved to pos, the transaction
		// went through; if it is still at prev, it did not, and the
		// batch is retried.
		cp, lerr := p.target.Load(ctx, slot)
		if lerr != nil || cp.Position != pos || pos == prev {
			return 0, err
		}
	}
	p.mu.Lock()
	p.position, p.parked = pos, total
	p.rate.add(p.opts.Now(), applied)
	close(p.progress)
	p.progress = make(chan struct{})
	p.mu.Unlock()
	p.caughtUp(caughtUp)
	return 0, nil
}

// caughtUp ends a rebuild once the subscription has delivered all history.
func (p *Projector[M]) caughtUp(yes bool) {
	if !yes {
		return
	}
	p.mu.Lock()
	p.rebuilding = false
	p.mu.Unlock()
	if p.parent != nil {
		p.parent.builderReady()
	}
}
