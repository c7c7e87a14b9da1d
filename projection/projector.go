package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/annals/annals"
)

// A Projector runs one projection against one store and one target: it
// follows $all from the stored checkpoint with a catch-up subscription and
// applies each batch of events in one transaction of the target, together
// with the checkpoint that passes them.
//
// Invariants:
//
//   - The applier handles events in strictly increasing global position,
//     each one only if its position is past the checkpoint it holds, and
//     the checkpoint it holds is the one it last committed (or loaded).
//   - A transaction commits the read-model changes of its events and the
//     checkpoint of its last event together, or nothing (see Target).
//   - Memory is bounded: the subscription reader is at most BatchEvents
//     messages ahead of the applier, and a batch holds at most BatchEvents.
//
// Run, Start, Stop, Pause, Resume, Reset and Status are safe for
// concurrent use.
type Projector[M any] struct {
	store  annals.Store
	target Target[M]
	name   string // the projection's, for good
	opts   Options
	// policy is proj's, with defaults; read and changed (by a rebuild
	// with a new definition) only by the applier.
	policy ErrorPolicy
	// log is opts.Logger with the projection's name (and, in a
	// rebuild's builder, its generation).
	log *slog.Logger

	// runMu is held by Run while it runs, and by a Reset or a
	// ReplayParked done while the projector is not running: one writer of
	// the checkpoint at a time in this process.
	runMu sync.Mutex
	// requests carries the actions that run as the writer (Reset,
	// ReplayParked, Rebuild) to a running projector's applier.
	requests chan request[M]
	// parent is set on the builder of a blue/green rebuild's next
	// generation: it applies nothing past the parent's position (see
	// rebuild.go).
	parent *Projector[M]

	mu sync.Mutex // guards what follows
	// m is the state and the checkpoint held (core.go): every change of
	// phase goes through onLocked.
	m machine
	// changed is closed and replaced at each change of phase.
	changed chan struct{}
	// progress is closed and replaced at each commit.
	progress chan struct{}
	// proj is the definition applied; a blue/green rebuild with a new
	// definition (RebuildWith) replaces it at the switch. Read it with
	// def.
	proj Projection[M]
	// runDone is closed when the current Run returns; nil when none runs.
	runDone  chan struct{}
	cancel   context.CancelFunc // of the Run started by Start
	startErr chan error         // Run's result, for Stop
	// retry asks the run started by Start, once failed, to run again
	// (Resume, Reset); exited is closed when that run has ended for good.
	retry  chan struct{}
	exited chan struct{}
	rb     *rebuild[M]     // the blue/green rebuild in progress, if any
	runCtx context.Context // of the run in progress (ends with its lease)
}

// request is an action for the applier of a running projector, as the
// core's input in (inReset, inReplayParked or inRebuild, with next the
// rebuild's definition); the applier answers on done.
type request[M any] struct {
	in   input
	next Projection[M]
	done chan answer
}

// answer is the outcome of a request: n is how many parked events a
// replay applied.
type answer struct {
	n   int
	err error
}

// New returns a projector of p over store into target. It does not start
// it: call Run or Start.
func New[M any](store annals.Store, target Target[M], p Projection[M], opts Options) (*Projector[M], error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	return &Projector[M]{
		store:    store,
		target:   target,
		name:     p.Name,
		proj:     p,
		opts:     opts,
		policy:   p.Policy.withDefaults(),
		log:      opts.Logger.With("projection", p.Name),
		requests: make(chan request[M]),
		progress: make(chan struct{}),
		changed:  make(chan struct{}),
	}, nil
}

// Name is the projection's name.
func (p *Projector[M]) Name() string { return p.name }

// def is the definition applied.
func (p *Projector[M]) def() Projection[M] {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proj
}

// Run follows the log and applies it until ctx ends (it then returns nil)
// or the error policy gives up (it returns a *FailedError). It resumes
// from the stored checkpoint, so a Run after a crash or a stop neither
// skips nor repeats an event. Only one Run at a time: a second returns
// ErrRunning. On a target with leases (Leaser) Run first waits for the
// projection's lease, in state Standby, and applies only while it holds
// it: one instance across processes.
func (p *Projector[M]) Run(ctx context.Context) error {
	if !p.runMu.TryLock() {
		return ErrRunning
	}
	p.mu.Lock()
	p.beginLocked()
	p.mu.Unlock()
	return p.runBegun(ctx, nil)
}

// beginLocked marks a run in progress; the caller holds runMu and p.mu.
func (p *Projector[M]) beginLocked() {
	p.runDone = make(chan struct{})
	if _, ok := p.target.(Leaser); ok {
		p.onLocked(inAwait) // on standby until the lease is held
	} else {
		p.onLocked(inRun)
	}
	// A retry asked meanwhile is this run.
	select {
	case <-p.retry:
	default:
	}
}

// runBegun is Run once begun: it holds runMu, and releases it. first is
// a lease already taken for it (by Start), if any.
func (p *Projector[M]) runBegun(ctx context.Context, first Lease) error {
	defer p.runMu.Unlock()
	p.mu.Lock()
	done := p.runDone
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.runDone = nil
		p.onLocked(inEnd)
		p.mu.Unlock()
		close(done)
	}()

	for {
		lctx, release, err := p.lease(ctx, first)
		first = nil
		if err != nil {
			// ctx ended while waiting for the lease.
			return nil
		}
		err = p.follow(ctx, lctx)
		release()
		if !errors.Is(err, errLeaseLost) {
			return err
		}
		// The lease's connection broke: another instance may take over,
		// so stop applying and wait for the lease again.
		p.on(inLeaseLost)
		p.noteError(err)
	}
}

// errLeaseLost ends follow when the target reports the lease lost.
var errLeaseLost = errors.New("projection: lease lost")

// lease waits until this instance holds the projection's lease, if the
// target has leases (Leaser), in state Standby meanwhile; first, if set,
// is held already. It returns a context that ends with ctx or when the
// lease is lost, and the func that releases the lease. It fails only
// when ctx ends.
func (p *Projector[M]) lease(ctx context.Context, first Lease) (context.Context, func(), error) {
	l, ok := p.target.(Leaser)
	if !ok {
		p.on(inLease)
		return ctx, func() {}, nil
	}
	for {
		lease := first
		if first == nil {
			lease = p.tryLease(ctx, l)
		}
		first = nil
		if lease != nil {
			lctx, cancel := context.WithCancel(ctx)
			stop := make(chan struct{})
			go func() {
				select {
				case <-lease.Lost():
					cancel()
				case <-stop:
				}
			}()
			return lctx, func() {
				close(stop)
				cancel()
				lease.Release()
			}, nil
		}
		switch g := p.await(ctx, after(LeasePollInterval)); g.ev {
		case evDone:
			return nil, nil, ctx.Err()
		case evRequest:
			// Another instance is the writer: a reset from here would
			// race with it.
			g.req.done <- answer{err: ErrStandby}
		}
	}
}

// tryLease asks for the lease once and tells the core the answer:
// running with it, on standby without. It returns the lease, or nil.
func (p *Projector[M]) tryLease(ctx context.Context, l Leaser) Lease {
	lease, err := l.TryLease(ctx, p.name)
	if err != nil && ctx.Err() == nil {
		p.noteError(err)
	}
	if lease == nil {
		p.on(inWait)
		return nil
	}
	p.on(inLease)
	return lease
}

// follow applies the log while ctx and lctx (ctx, or ended by a lost
// lease) live. It returns nil when ctx ends, errLeaseLost when only lctx
// does, or the *FailedError that ends Run.
func (p *Projector[M]) follow(ctx, lctx context.Context) error {
	p.mu.Lock()
	p.runCtx = lctx
	p.mu.Unlock()
	defer func() {
		p.abandonRebuild()
		p.mu.Lock()
		p.runCtx = nil
		p.mu.Unlock()
	}()
	for {
		err := p.session(lctx)
		var failed *FailedError
		switch {
		case ctx.Err() != nil:
			return nil
		case lctx.Err() != nil:
			return errLeaseLost
		case errors.Is(err, errRestart):
			continue
		case errors.As(err, &failed):
			p.fail(failed)
			return err
		case errors.Is(err, annals.ErrClosed):
			p.noteError(err)
			failed = &FailedError{Name: p.name, Position: p.Position(), Attempts: 1, Err: err}
			p.fail(failed)
			return failed
		}
		// The subscription or the target failed outside a transaction's
		// retries: resume from the stored checkpoint after a pause.
		p.noteError(err)
		switch g := p.await(lctx, after(resubscribeDelay)); g.ev {
		case evDone:
			if ctx.Err() != nil {
				return nil
			}
			return errLeaseLost
		case evRequest:
			g.req.done <- p.loadAnd(lctx, g.req)
		}
	}
}

// Start runs the projector in a goroutine until Stop (or ctx ends). It
// fails with ErrRunning if the last Start was not followed by Stop, even
// if its Run has ended by itself (failed): Stop collects that result.
// Once failed, the projector waits for Resume (which runs it again from
// its checkpoint) or Reset (which runs it again from the start).
func (p *Projector[M]) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cancel != nil || !p.runMu.TryLock() {
		p.mu.Unlock()
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	retry, exited := make(chan struct{}, 1), make(chan struct{})
	p.cancel, p.startErr, p.retry, p.exited = cancel, errc, retry, exited
	// Begun here, and its first lease asked for, so that the projector
	// is running when Start returns unless another instance holds the
	// lease (it is then on standby).
	p.beginLocked()
	p.mu.Unlock()
	var first Lease
	if l, ok := p.target.(Leaser); ok {
		first = p.tryLease(ctx, l)
	}
	go func() {
		defer close(exited)
		errc <- p.supervise(ctx, retry, first)
	}()
	return nil
}

// supervise runs the begun run (with the lease first, if Start took
// it), and again after each failure when retry asks, until ctx ends; it
// returns the last run's result.
func (p *Projector[M]) supervise(ctx context.Context, retry <-chan struct{}, first Lease) error {
	err := p.runBegun(ctx, first)
	for {
		if _, ok := errors.AsType[*FailedError](err); !ok || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-retry:
		}
		// A Reset or a ReplayParked may hold runMu for a moment.
		p.runMu.Lock()
		p.mu.Lock()
		p.beginLocked()
		p.mu.Unlock()
		err = p.runBegun(ctx, nil)
	}
}

// Stop ends the Run started by Start, waits for it and returns its result
// (nil, or the *FailedError it ended with).
func (p *Projector[M]) Stop() error {
	p.mu.Lock()
	cancel, errc := p.cancel, p.startErr
	p.cancel, p.startErr, p.retry, p.exited = nil, nil, nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-errc
}

// Pause makes a running projector apply nothing more after the batch in
// hand, until Resume. The subscription stops reading once its one-batch
// buffer is full. It is refused (see docs/projections.md, "Actions by
// state") by a projector that is stopped (ErrNotRunning), failed
// (ErrFailed) or on standby (ErrStandby); pausing a paused one changes
// nothing.
func (p *Projector[M]) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.onLocked(inPause); e.refused() {
		return p.refusalLocked("pause", e.refuse)
	}
	return nil
}

// Resume undoes Pause; resuming a running projector changes nothing. A
// failed projector started with Start runs again from its checkpoint (the
// failing event is retried under its error policy): Resume returns once
// the new run has begun. It is refused by a projector that is stopped
// (ErrNotRunning), on standby (ErrStandby), or failed in a Run of its
// caller's (ErrFailed: the caller runs it again).
func (p *Projector[M]) Resume() error {
	p.mu.Lock()
	e, owned := p.onLocked(inResume), p.retry != nil
	var err error
	if e.refused() {
		err = p.refusalLocked("resume", e.refuse)
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		return err
	case e.retry && owned:
		return p.retryFailed("resume")
	case e.retry:
		return fmt.Errorf("projection %s: cannot resume: %w; its caller's Run returned: run it again", p.name, ErrFailed)
	}
	return nil
}

// refusalLocked is the error by which the projector refuses action with
// the table's reason; p.mu is held.
func (p *Projector[M]) refusalLocked(action string, reason error) error {
	if reason == ErrFailed {
		reason = fmt.Errorf("%w (resume retries it, reset replays it from the start): %s", ErrFailed, p.m.lastError)
	}
	return fmt.Errorf("projection %s: cannot %s: %w", p.name, action, reason)
}

// retryFailed runs a failed projector started with Start again, and
// returns once the new run has begun (or another did).
func (p *Projector[M]) retryFailed(action string) error {
	p.mu.Lock()
	failed, retry, exited, runs := p.m.failed(), p.retry, p.exited, p.m.runs
	if failed && retry != nil {
		select {
		case retry <- struct{}{}:
		default: // already asked
		}
	}
	p.mu.Unlock()
	if !failed || retry == nil {
		return nil // retried meanwhile, or not ours to run
	}
	for {
		p.mu.Lock()
		begun, changed := p.m.runs != runs, p.changed
		p.mu.Unlock()
		if begun {
			return nil
		}
		select {
		case <-changed:
		case <-exited:
			return fmt.Errorf("projection %s: cannot %s: %w (stopped)", p.name, action, ErrNotRunning)
		}
	}
}

// Reset deletes the read model (Projection.Reset) and sets the checkpoint
// to 0, in one transaction, and forgets the parked events. A running
// projector then replays the log from the start (state rebuilding until it
// catches up); a stopped one does so when it runs again.
//
// A failed projector started with Start runs again at once, from the
// start; one failed in its caller's Run replays when run again.
func (p *Projector[M]) Reset(ctx context.Context) error {
	if p.def().Reset == nil {
		return ErrNoReset
	}
	if err := p.check(inReset); err != nil {
		return err // ErrStandby: the instance that runs is the writer
	}
	if _, err := p.asWriter(ctx, request[M]{in: inReset}); err != nil {
		return err
	}
	p.mu.Lock()
	failed, owned := p.m.failed(), p.retry != nil
	p.mu.Unlock()
	if failed && owned {
		return p.retryFailed("reset")
	}
	return nil
}

// asWriter carries out req as the only writer of the checkpoint: in the
// applier of the running projector (then, after a reset, the session
// reloads the checkpoint), or here, under runMu, from the stored
// checkpoint if none runs.
func (p *Projector[M]) asWriter(ctx context.Context, req request[M]) (int, error) {
	p.mu.Lock()
	runDone := p.runDone
	p.mu.Unlock()
	if runDone != nil {
		req.done = make(chan answer, 1)
		select {
		case p.requests <- req:
			select {
			case a := <-req.done:
				return a.n, a.err
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		case <-runDone:
			// Run ended meanwhile: do it here.
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	p.runMu.Lock()
	defer p.runMu.Unlock()
	a := p.loadAnd(ctx, req)
	return a.n, a.err
}

// loadAnd carries out req from the stored checkpoint (the one held may
// be stale between sessions); the caller is the only writer.
func (p *Projector[M]) loadAnd(ctx context.Context, req request[M]) answer {
	if err := p.load(ctx); err != nil {
		return answer{err: err}
	}
	return p.act(ctx, req)
}

// act carries out the I/O of the action req, the caller being the only
// writer, and applies its input to the core once committed. A rebuild
// asks the core again first: a reset may have come since its caller
// asked.
func (p *Projector[M]) act(ctx context.Context, req request[M]) answer {
	switch req.in {
	case inReset:
		return answer{err: p.reset(ctx)}
	case inRebuild:
		return answer{err: p.startRebuild(ctx, req.next)}
	case inReplayParked:
		n, err := p.replayParked(ctx)
		return answer{n: n, err: err}
	}
	return answer{err: fmt.Errorf("projection %s: no action %s", p.name, req.in)}
}

// load reads the active generation and its checkpoint.
func (p *Projector[M]) load(ctx context.Context) error {
	gen := uint64(0)
	if p.parent != nil {
		gen = p.gen() // a builder's generation is fixed
	} else {
		var err error
		if gen, err = p.target.Generation(ctx, p.name); err != nil {
			return err
		}
	}
	cp, err := p.target.Load(ctx, slotName(p.name, gen))
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.m.load(gen, cp)
	p.mu.Unlock()
	return nil
}

// slot is the target's name of the generation applied.
func (p *Projector[M]) slot() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slotName(p.name, p.m.gen)
}

// gen is the active generation (a builder's: the one it builds).
func (p *Projector[M]) gen() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.gen
}

// reset runs the reset transaction; the caller is the only writer. A
// blue/green rebuild in progress is given up first.
func (p *Projector[M]) reset(ctx context.Context) error {
	p.abandonRebuild()
	tx, err := p.target.Begin(ctx, p.slot())
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := p.def().Reset(ctx, tx.Model()); err != nil {
		return fmt.Errorf("projection %s: reset: %w", p.name, err)
	}
	if err := tx.ClearParked(ctx); err != nil {
		return err
	}
	if err := tx.SaveCheckpoint(ctx, p.Position(), Checkpoint{}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.m.resetDone()
	p.onLocked(inReset)
	p.mu.Unlock()
	return nil
}

// Position is the checkpoint the projector holds: the last position it
// committed or loaded (0 before it first loads it; Status loads it).
func (p *Projector[M]) Position() annals.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.position
}

// Status reports the projector's state and progress; it reads the store's
// head to compute the lag.
func (p *Projector[M]) Status(ctx context.Context) (Status, error) {
	var head annals.Position
	for e, err := range p.store.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if err != nil {
			return Status{}, err
		}
		head = e.Position
	}
	p.mu.Lock()
	stale := p.staleLocked()
	p.mu.Unlock()
	if stale {
		// Not run yet, or another instance is the writer: report the
		// stored checkpoint.
		gen, err := p.target.Generation(ctx, p.name)
		if err != nil {
			return Status{}, err
		}
		cp, err := p.target.Load(ctx, slotName(p.name, gen))
		if err != nil {
			return Status{}, err
		}
		p.mu.Lock()
		if p.staleLocked() {
			p.m.load(gen, cp)
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Name:            p.name,
		State:           p.m.ph.public(),
		Position:        p.m.position,
		Head:            head,
		EventsPerSecond: p.m.rate.perSecond(p.opts.Now()),
		LastError:       p.m.lastError,
		LastErrorAt:     p.m.lastErrorAt,
		Parked:          p.m.parked,
		Generation:      p.m.gen,
		Rebuild:         p.rb.status(head),
	}
	if head > s.Position {
		s.Lag = uint64(head - s.Position)
	}
	return s, nil
}

// ParkedEvents lists up to limit parked events, oldest first.
func (p *Projector[M]) ParkedEvents(ctx context.Context, limit int) ([]ParkedEvent, error) {
	gen, err := p.target.Generation(ctx, p.name)
	if err != nil {
		return nil, err
	}
	return p.target.ParkedEvents(ctx, slotName(p.name, gen), clampLimit(limit))
}

// staleLocked reports whether the checkpoint held may be behind the
// stored one: not loaded yet, or another instance is the writer.
func (p *Projector[M]) staleLocked() bool {
	return !p.m.loaded || p.m.ph.public() == Standby
}

// on applies in to the core (see onLocked).
func (p *Projector[M]) on(in input) edge {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.onLocked(in)
}

// onLocked applies in to the core and wakes the waiters of a change;
// p.mu is held.
func (p *Projector[M]) onLocked(in input) edge {
	before := p.m.ph
	e := p.m.on(in)
	if p.m.ph != before {
		p.changedLocked()
	}
	return e
}

// changedLocked wakes whoever waits for a change of phase.
func (p *Projector[M]) changedLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// refusal is the error by which the core refuses action (in), if any.
func (p *Projector[M]) refusal(action string, in input) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.m.check(in); err != nil {
		return p.refusalLocked(action, err)
	}
	return nil
}

// check is the core's refusal of in, if any.
func (p *Projector[M]) check(in input) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.check(in)
}

// fail logs the failure and marks the projector failed: the failure is in
// the log when it happens, not when the projector's owner collects it, and
// before anyone can see the Failed state.
func (p *Projector[M]) fail(f *FailedError) {
	p.log.Error("projection failed: resume retries it, reset replays it from the start",
		"position", f.Position, "attempts", f.Attempts, "err", f.Err)
	p.on(inFail)
}

// noteError records err as the last error and logs it: an error the
// projector goes on after (it retries, parks or gives up a rebuild).
func (p *Projector[M]) noteError(err error) {
	p.mu.Lock()
	p.m.noteError(err.Error(), p.opts.Now())
	pos := p.m.position
	p.mu.Unlock()
	p.log.Warn("projection error", "position", pos, "err", err)
}

// WaitFor waits until the projector has dealt with the global position
// pos (its checkpoint is at or past it), or ctx ends. After an append
// acknowledged at position pos, it is how a caller reads its own write
// from the read model: the asynchronous projection's answer to inline
// projections (see docs/projections.md). It watches this projector's
// commits: call it on the running instance, with a deadline.
func (p *Projector[M]) WaitFor(ctx context.Context, pos annals.Position) error {
	for {
		p.mu.Lock()
		reached, progress := p.m.position >= pos && p.m.loaded, p.progress
		p.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
