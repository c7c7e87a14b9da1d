package projection

import (
	"context"
	"fmt"
	"sync"

	"github.com/annals/annals"
)

// Blue/green rebuilds.
//
// Rebuild builds generation n+1 of a running projection beside the
// active generation n, which keeps following the log and serving
// queries. A builder (a Projector of its own, on slot n+1) replays the
// log from the start, never past its parent's position; once it has
// caught up (with the log, or with its parent when the parent lags
// behind the log), the parent, between two of its batches:
//
//  1. stops the builder and reads its checkpoint S;
//  2. applies the events in (S, P] to generation n+1 itself, P being its
//     own position, which does not move meanwhile (it is the applier);
//  3. switches the target to generation n+1 and drops generation n, in
//     one transaction of the target (Target.Switch);
//  4. follows the log from P in generation n+1.
//
// Invariants:
//
//   - Generation n+1 holds every event up to P exactly once (the
//     builder's and step 2's transactions move its own checkpoint, as
//     any projector's do) and nothing past P; at the switch both
//     generations are at P, so the switched read model is a clean
//     build's, and no event is skipped or handled twice across it.
//   - Every event the builder handles was handled by generation n before
//     (it never passes the parent's position): its handler runs with
//     Replaying(ctx) true, so side effects are not fired twice. After the
//     switch, events are handled once, live.
//   - Queries see generation n until the switch commits and n+1 after,
//     whole (the target's Switch is atomic; on PostgreSQL it also waits
//     for the queries in progress, see Postgres.Query).
//   - If the builder fails (its error policy gave up), the run ends, or a
//     Reset comes, the rebuild is given up and generation n+1 dropped;
//     generation n is untouched. A rebuild interrupted by a crash leaves
//     its generation behind until the next Rebuild drops it first.
type rebuild[M any] struct {
	gen     uint64
	builder *Projector[M]
	cancel  context.CancelFunc
	// done is closed when the builder's run returns (err is its result).
	done chan struct{}
	err  error
	// ready is closed when the builder has caught up with the log or
	// with its parent.
	ready     chan struct{}
	readyOnce sync.Once
}

// Rebuild starts a blue/green rebuild of the running projection: the
// next generation of its read model is built from the start of the log
// beside the active one, which keeps serving queries and following the
// log; when it has caught up, the projector switches to it atomically and
// drops the old one. Rebuild returns once the rebuild has started; Status
// shows its progress (State Rebuilding, Status.Rebuild) and, after the
// switch, the new Generation. Side effects: see Replaying.
//
// It fails with ErrNotRunning if the projector does not run, ErrFailed
// if it failed, ErrStandby on a standby, ErrRebuilding if a rebuild (or
// the replay after a Reset) is in progress.
func (p *Projector[M]) Rebuild(ctx context.Context) error {
	return p.RebuildWith(ctx, p.def())
}

// RebuildWith is Rebuild with a new definition of the projection (same
// Name): the next generation is built by next's Setup and Handle while the
// active one goes on with the current definition, and the projector
// applies next from the switch on. This is how a new version of a read
// model (another table layout, a fixed handler) replaces the old one
// without downtime. Until the switch, Reset and a restart of the process
// go back to the current definition (the rebuild is given up).
func (p *Projector[M]) RebuildWith(ctx context.Context, next Projection[M]) error {
	if err := next.validate(); err != nil {
		return err
	}
	if next.Name != p.name {
		return invalid("a rebuild of %s with a definition named %s", p.name, next.Name)
	}
	if p.parent != nil {
		return invalid("a rebuild's builder cannot rebuild")
	}
	if err := p.refusal("rebuild", inRebuild); err != nil {
		return err
	}
	_, err := p.asWriter(ctx, request[M]{in: inRebuild, next: next})
	return err
}

// startRebuild runs in the applier (or, if Run ended meanwhile, under
// runMu, where there is no run to rebuild beside).
func (p *Projector[M]) startRebuild(ctx context.Context, next Projection[M]) error {
	p.mu.Lock()
	runCtx, gen := p.runCtx, p.m.gen+1
	p.mu.Unlock()
	if runCtx == nil {
		return ErrNotRunning
	}
	// The phase may have changed since RebuildWith looked (a reset).
	if err := p.refusal("rebuild", inRebuild); err != nil {
		return err
	}
	// What an interrupted rebuild left of this generation.
	if err := p.target.Drop(ctx, p.name, gen); err != nil {
		return err
	}
	b := &Projector[M]{
		store:    p.store,
		target:   p.target,
		name:     p.name,
		proj:     next,
		opts:     p.opts,
		policy:   next.Policy.withDefaults(),
		requests: make(chan request[M]),
		progress: make(chan struct{}),
		changed:  make(chan struct{}),
		parent:   p,
		m:        machine{gen: gen},
		log:      p.log.With("generation", gen),
	}
	bctx, cancel := context.WithCancel(runCtx)
	rb := &rebuild[M]{gen: gen, builder: b, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	p.mu.Lock()
	p.rb = rb
	p.onLocked(inRebuild)
	p.mu.Unlock()
	go func() {
		defer close(rb.done)
		rb.err = b.follow(bctx, bctx)
	}()
	return nil
}

// builderReady is called by the builder when it has caught up with the
// log, or with its parent (it holds a message past the parent's
// position): the parent may finish the rebuild.
func (p *Projector[M]) builderReady() {
	p.mu.Lock()
	rb := p.rb
	p.mu.Unlock()
	if rb != nil {
		rb.readyOnce.Do(func() { close(rb.ready) })
	}
}

// applicable is how many of msgs, from the first, may be applied now: all
// of them, except in a builder, which applies nothing past its parent's
// position (see the invariants above).
func (p *Projector[M]) applicable(msgs []annals.Message) int {
	if p.parent == nil {
		return len(msgs)
	}
	limit := p.parent.Position()
	for i, m := range msgs {
		pos := m.Position
		switch m.Kind {
		case annals.MessageEvent:
			pos = m.Event.Position
		case annals.MessageCaughtUp:
			pos = 0 // a signal, not a position to hold back
		}
		if pos > limit {
			return i
		}
	}
	return len(msgs)
}

// waitForParent waits for the builder's parent to commit, or for ctx.
func (p *Projector[M]) waitForParent(ctx context.Context) error {
	p.parent.mu.Lock()
	progress := p.parent.progress
	p.parent.mu.Unlock()
	if p.parent.Position() > p.Position() {
		// It moved since the batch was cut.
		return nil
	}
	select {
	case <-progress:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finishRebuild brings the builder's generation to the parent's position
// and switches to it (steps 1–3 above); it runs in the parent's applier.
// On failure the rebuild is given up (noted in LastError) and the active
// generation goes on.
func (p *Projector[M]) finishRebuild(ctx context.Context) error {
	p.mu.Lock()
	rb := p.rb
	from := p.m.gen
	p.mu.Unlock()
	rb.cancel()
	<-rb.done
	b := rb.builder
	if err := b.load(ctx); err != nil {
		return p.giveUpRebuild(err)
	}
	last := p.Position()
	for b.Position() < last {
		msgs, err := p.stretch(ctx, b.Position(), last)
		if err != nil {
			return p.giveUpRebuild(err)
		}
		if err := b.apply(ctx, msgs); err != nil {
			return p.giveUpRebuild(err)
		}
	}
	if err := p.target.Switch(ctx, p.name, from, rb.gen); err != nil {
		// A switch whose answer was lost may have gone through.
		if gen, gerr := p.target.Generation(ctx, p.name); gerr != nil || gen != rb.gen {
			return p.giveUpRebuild(err)
		}
	}
	p.mu.Lock()
	p.rb = nil
	p.proj = b.proj
	p.m.switched(rb.gen)
	p.onLocked(inSwitch)
	p.mu.Unlock()
	p.policy = b.policy
	return nil
}

// stretch reads the next events after from up to last (at most a batch)
// as messages for the builder, ending with the checkpoint last once the
// read reaches it.
func (p *Projector[M]) stretch(ctx context.Context, from, last annals.Position) ([]annals.Message, error) {
	limit := p.opts.BatchEvents
	msgs := make([]annals.Message, 0, limit+1)
	read := 0
	for e, err := range p.store.ReadAll(ctx, annals.ReadAllOptions{From: annals.After(from), Limit: uint64(limit), Filter: p.def().Filter}) {
		if err != nil {
			return nil, err
		}
		read++
		if e.Position > last {
			break
		}
		msgs = append(msgs, annals.Message{Kind: annals.MessageEvent, Event: e})
	}
	if read < limit || len(msgs) < read {
		// Nothing more up to last: the builder's checkpoint may pass
		// to it.
		msgs = append(msgs, annals.Message{Kind: annals.MessageCheckpoint, Position: last})
	}
	return msgs, nil
}

// rebuildEnded handles a builder whose run returned by itself: its error
// policy gave up, or the store closed.
func (p *Projector[M]) rebuildEnded() {
	p.mu.Lock()
	rb := p.rb
	p.mu.Unlock()
	err := rb.err
	if err == nil {
		err = fmt.Errorf("the builder stopped")
	}
	p.giveUpRebuild(err)
}

// giveUpRebuild abandons the rebuild in progress and notes why.
func (p *Projector[M]) giveUpRebuild(err error) error {
	p.abandonRebuild()
	err = fmt.Errorf("projection %s: rebuild given up: %w", p.name, err)
	p.noteError(err)
	return err
}

// abandonRebuild stops the builder, if any, and drops its generation.
func (p *Projector[M]) abandonRebuild() {
	p.mu.Lock()
	rb := p.rb
	p.rb = nil
	if rb != nil {
		p.onLocked(inGiveUp)
	}
	p.mu.Unlock()
	if rb == nil {
		return
	}
	rb.cancel()
	<-rb.done
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	// On failure the next Rebuild drops it first.
	p.target.Drop(ctx, p.name, rb.gen)
}

// status is the rebuild's progress; nil if r is nil.
func (r *rebuild[M]) status(head annals.Position) *RebuildStatus {
	if r == nil {
		return nil
	}
	b := r.builder
	b.mu.Lock()
	s := &RebuildStatus{Generation: r.gen, Position: b.m.position, LastError: b.m.lastError}
	b.mu.Unlock()
	if head > s.Position {
		s.Lag = uint64(head - s.Position)
	}
	return s
}
