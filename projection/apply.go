package projection

import (
	"context"
	"errors"
	"fmt"

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
// applies batches until ctx ends, a reset restarts it, or an error. What
// it does next is the core's decision (listen): apply the batch in
// hand, or wait in await for what the decision listens to.
func (p *Projector[M]) session(ctx context.Context) error {
	if err := p.load(ctx); err != nil {
		return err
	}
	if err := p.setup(ctx); err != nil {
		return err
	}
	r := p.subscribe(ctx, annals.After(p.Position()))
	defer r.stop()
	batch := make([]annals.Message, 0, p.opts.BatchEvents)
	for {
		var err error
		w, src := p.listen(r, len(batch))
		if w == workApply {
			batch, err = p.applyBatch(ctx, r.drain(batch, p.opts.BatchEvents))
		} else {
			batch, err = p.react(ctx, r, p.await(ctx, src), batch)
		}
		if err != nil {
			return err
		}
	}
}

// react carries out what an event of a session asks: a message joins
// the batch in hand; a request is served; the builder caught up is the
// switch (then the session restarts in the new generation), its end the
// rebuild given up; the reader's or the context's end ends the session.
func (p *Projector[M]) react(ctx context.Context, r *reader, g got[M], batch []annals.Message) ([]annals.Message, error) {
	switch g.ev {
	case evMessage:
		return append(batch, g.msg), nil
	case evEnded:
		return batch, r.ended()
	case evRequest:
		return batch, p.serve(ctx, g.req)
	case evReady:
		if err := p.finishRebuild(ctx); err != nil {
			return batch, nil // given up and noted; the active generation goes on
		}
		return batch, errRestart
	case evBuilt:
		p.rebuildEnded()
	case evDone:
		return batch, ctx.Err()
	}
	return batch, nil
}

// reader is a session's subscription, read in a goroutine of its own
// into msgs, at most one batch ahead of the applier.
type reader struct {
	msgs   chan annals.Message
	done   chan struct{} // closed when the subscription returned err
	err    error
	cancel context.CancelFunc
}

// subscribe starts the reader of $all from from.
func (p *Projector[M]) subscribe(ctx context.Context, from annals.Position) *reader {
	sctx, cancel := context.WithCancel(ctx)
	r := &reader{msgs: make(chan annals.Message, p.opts.BatchEvents), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = p.read(sctx, from, r.msgs)
	}()
	return r
}

// stop ends the reader and waits for it.
func (r *reader) stop() {
	r.cancel()
	<-r.done
}

// ended is the reader's error once done.
func (r *reader) ended() error {
	if r.err == nil {
		return errSubscriptionEnded
	}
	return r.err
}

// drain adds to batch what has arrived, up to limit messages.
func (r *reader) drain(batch []annals.Message, limit int) []annals.Message {
	for len(batch) < limit {
		select {
		case m := <-r.msgs:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// applyBatch applies what of batch may be applied now and returns the
// rest.
func (p *Projector[M]) applyBatch(ctx context.Context, batch []annals.Message) ([]annals.Message, error) {
	n := p.applicable(batch)
	if n == 0 {
		// A rebuild's builder at its parent's position: it has applied
		// all the parent has, so the parent may finish the rebuild
		// (even if both lag behind the head); or wait for the parent
		// to move.
		p.parent.builderReady()
		return batch, p.waitForParent(ctx)
	}
	if err := p.apply(ctx, batch[:n]); err != nil {
		return batch, err
	}
	rest := copy(batch, batch[n:])
	clear(batch[rest:])
	return batch[:rest], nil
}

// serve carries out a writer's request in the applier. A reset
// restarts the session from the new checkpoint (and a failed one ends
// it, as a moved checkpoint does: the checkpoint held is in doubt).
func (p *Projector[M]) serve(ctx context.Context, req request[M]) error {
	a := p.act(ctx, req)
	req.done <- a
	restart := req.in == inReset
	switch {
	case a.err == nil && restart:
		return errRestart
	case a.err != nil && (restart || errors.Is(a.err, ErrCheckpointMoved)):
		return a.err
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
	parked := p.m.parked
	p.mu.Unlock()
	if err := tx.SaveCheckpoint(ctx, 0, Checkpoint{Parked: parked}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// read feeds msgs from a catch-up subscription of $all starting at from.
func (p *Projector[M]) read(ctx context.Context, from annals.Position, msgs chan<- annals.Message) error {
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

// apply applies msgs, in as few transactions as the error policy allows
// (see retrier): it carries out the retrier's steps.
func (p *Projector[M]) apply(ctx context.Context, msgs []annals.Message) error {
	r, s := newRetrier(p.policy, len(msgs))
	for s.n > 0 || s.stop || s.abort {
		switch {
		case s.stop:
			return &FailedError{Name: p.name, Position: p.Position(), Attempts: s.attempts, Err: s.cause}
		case s.abort:
			return s.cause
		}
		if s.wait > 0 {
			if err := backoff.Sleep(ctx, s.wait); err != nil {
				return err
			}
		}
		var park *ParkedEvent
		if s.park {
			park = p.parkedEvent(msgs[0].Event, s.attempts, s.cause)
		}
		failedAt, err := p.commit(ctx, msgs[:s.n], park, s.batched)
		if err == nil {
			if park != nil {
				p.log.Warn("projection parked an event", "position", park.Position,
					"stream", park.Stream, "type", park.Type, "attempts", park.Attempts, "err", park.Error)
			}
			msgs = msgs[s.n:]
			s = r.committed(s)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if be, ok := errors.AsType[*batchError](err); ok {
			p.noteError(be.err)
		} else {
			p.noteError(err)
		}
		s = r.failed(failedAt, err)
	}
	return nil
}

// parkedEvent is e as parked after attempts failed attempts with err.
func (p *Projector[M]) parkedEvent(e annals.Event, attempts int, err error) *ParkedEvent {
	msg := err.Error()
	if he, ok := errors.AsType[*HandlerError](err); ok {
		msg = he.Err.Error()
	}
	return &ParkedEvent{Position: e.Position, EventID: e.ID, Stream: e.Stream, Type: e.Type,
		Error: truncate(msg), Attempts: attempts, ParkedAt: p.opts.Now().UTC()}
}

// commit applies msgs in one transaction with the checkpoint of the last
// one, as planTx plans it. If park is set, msgs[0] is that event,
// recorded instead of handled. When the handler fails it returns the
// index of the failing message and a *HandlerError; the transaction is
// rolled back.
func (p *Projector[M]) commit(ctx context.Context, msgs []annals.Message, park *ParkedEvent, batched bool) (int, error) {
	// The applier is the only writer of all this: one look suffices.
	p.mu.Lock()
	prev, parkedBefore, replayUntil := p.m.position, p.m.parked, p.m.replayUntil
	slot, def := slotName(p.name, p.m.gen), p.proj
	p.mu.Unlock()
	if p.parent != nil {
		// A builder applies only what its parent has applied.
		replayUntil = annals.End
	}
	plan := planTx(msgs, prev, replayUntil, park != nil)
	if !plan.needed {
		p.caughtUp(plan.caughtUp)
		return 0, nil
	}
	tx, err := p.target.Begin(ctx, slot)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	total := parkedBefore
	if plan.park {
		if err := tx.Park(ctx, *park); err != nil {
			return 0, err
		}
		total++
	}
	if failedAt, err := handle(ctx, tx.Model(), def, plan.items, batched && def.HandleBatch != nil); err != nil {
		return failedAt, err
	}
	if err := tx.SaveCheckpoint(ctx, prev, Checkpoint{Position: plan.pos, Parked: total}); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		// The commit's outcome is unknown (its answer may be lost): the
		// stored checkpoint tells. If it moved to pos, the transaction
		// went through; if it is still at prev, it did not, and the
		// batch is retried.
		cp, lerr := p.target.Load(ctx, slot)
		if lerr != nil || cp.Position != plan.pos || plan.pos == prev {
			return 0, err
		}
	}
	p.mu.Lock()
	p.m.committed(plan.pos, total, uint64(len(plan.items)), p.opts.Now())
	close(p.progress)
	p.progress = make(chan struct{})
	p.mu.Unlock()
	p.caughtUp(plan.caughtUp)
	return 0, nil
}

// handle hands items to the handler of def, through model: to
// HandleBatch in runs of the same replay flag if batched, else one at a
// time to Handle (which tells the index of the failing message).
func handle[M any](ctx context.Context, model M, def Projection[M], items []item, batched bool) (int, error) {
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
	if batched {
		for _, run := range runs(items) {
			events := make([]annals.Event, len(run))
			for i, it := range run {
				events[i] = *it.event
			}
			if err := def.HandleBatch(handlerCtx(run[0].replay), model, events); err != nil {
				return 0, &batchError{err: err}
			}
		}
		return 0, nil
	}
	for _, it := range items {
		e := *it.event
		if err := def.Handle(handlerCtx(it.replay), model, e); err != nil {
			return it.index, &HandlerError{Position: e.Position, Stream: e.Stream, Type: e.Type, Err: err}
		}
	}
	return 0, nil
}

// caughtUp ends the replay after a reset once the subscription has
// delivered all history; a builder tells its parent it may switch.
func (p *Projector[M]) caughtUp(yes bool) {
	if !yes {
		return
	}
	p.on(inCaughtUp)
	if p.parent != nil {
		p.parent.builderReady()
	}
}
