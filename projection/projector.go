package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	// requests carries work that must run as the writer (Reset,
	// ReplayParked, Rebuild) to a running projector's applier.
	requests chan request
	// parent is set on the builder of a blue/green rebuild's next
	// generation: it applies nothing past the parent's position (see
	// rebuild.go).
	parent *Projector[M]

	mu sync.Mutex // guards what follows
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
	// began is closed and replaced whenever a Run begins.
	began chan struct{}
	// The state is derived from these (see stateLocked).
	running     bool // a Run is in progress
	failed      bool // the last Run ended with a *FailedError
	rebuilding  bool // reset, and not yet caught up with the log
	paused      bool
	standby     bool            // waiting for the lease (Leaser targets)
	gen         uint64          // the generation applied (loaded with the checkpoint)
	replayUntil uint64          // events up to here were handled before a Reset
	progress    chan struct{}   // closed and replaced at each commit
	rb          *rebuild[M]     // the blue/green rebuild in progress, if any
	runCtx      context.Context // of the run in progress (ends with its lease)
	resumed     chan struct{}   // closed by Resume
	loaded      bool            // position and parked hold the stored checkpoint
	position    uint64
	parked      uint64
	lastError   string
	lastErrorAt time.Time
	rate        rate
}

// request is work for the applier of a running projector: do runs as the
// only writer of the checkpoint; restart says the session must reload
// the checkpoint after it succeeds.
type request struct {
	do      func(ctx context.Context) error
	restart bool
	done    chan error
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
		requests: make(chan request),
		progress: make(chan struct{}),
		began:    make(chan struct{}),
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
	return p.runBegun(ctx)
}

// beginLocked marks a run in progress; the caller holds runMu and p.mu.
func (p *Projector[M]) beginLocked() {
	p.runDone = make(chan struct{})
	p.running, p.failed = true, false
	close(p.began)
	p.began = make(chan struct{})
	// A retry asked meanwhile is this run.
	select {
	case <-p.retry:
	default:
	}
}

// runBegun is Run once begun: it holds runMu, and releases it.
func (p *Projector[M]) runBegun(ctx context.Context) error {
	defer p.runMu.Unlock()
	p.mu.Lock()
	done := p.runDone
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.runDone = nil
		p.running, p.standby = false, false
		p.mu.Unlock()
		close(done)
	}()

	for {
		lctx, release, err := p.lease(ctx)
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
		p.noteError(err)
	}
}

// errLeaseLost ends follow when the target reports the lease lost.
var errLeaseLost = errors.New("projection: lease lost")

// lease waits until this instance holds the projection's lease, if the
// target has leases (Leaser), in state Standby meanwhile. It returns a
// context that ends with ctx or when the lease is lost, and the func
// that releases the lease. It fails only when ctx ends.
func (p *Projector[M]) lease(ctx context.Context) (context.Context, func(), error) {
	l, ok := p.target.(Leaser)
	if !ok {
		return ctx, func() {}, nil
	}
	defer p.setStandby(false)
	for {
		lease, err := l.TryLease(ctx, p.name)
		if err != nil && ctx.Err() == nil {
			p.noteError(err)
		}
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
		p.setStandby(true)
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case req := <-p.requests:
			// Another instance is the writer: a reset from here would
			// race with it.
			req.done <- ErrStandby
		case <-time.After(LeasePollInterval):
		}
	}
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
		select {
		case <-lctx.Done():
			if ctx.Err() != nil {
				return nil
			}
			return errLeaseLost
		case req := <-p.requests:
			req.done <- p.loadAnd(lctx, req.do)
		case <-time.After(resubscribeDelay):
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
	defer p.mu.Unlock()
	if p.cancel != nil || !p.runMu.TryLock() {
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	retry, exited := make(chan struct{}, 1), make(chan struct{})
	p.cancel, p.startErr, p.retry, p.exited = cancel, errc, retry, exited
	// Begun here, so that the projector is running when Start returns.
	p.beginLocked()
	go func() {
		defer close(exited)
		errc <- p.supervise(ctx, retry)
	}()
	return nil
}

// supervise runs the begun run, and again after each failure when retry
// asks, until ctx ends; it returns the last run's result.
func (p *Projector[M]) supervise(ctx context.Context, retry <-chan struct{}) error {
	err := p.runBegun(ctx)
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
		err = p.runBegun(ctx)
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
	if err := p.refusedLocked("pause"); err != nil {
		return err
	}
	if !p.paused {
		p.paused = true
		p.resumed = make(chan struct{})
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
	st, owned := p.stateLocked(), p.retry != nil
	err := p.refusedLocked("resume")
	if st == Failed && owned {
		err = nil // retried below
	}
	if err == nil && p.paused {
		p.paused = false
		close(p.resumed)
	}
	p.mu.Unlock()
	if st == Failed && owned {
		return p.retryFailed("resume")
	}
	if st == Failed {
		return fmt.Errorf("projection %s: cannot resume: %w; its caller's Run returned: run it again", p.name, ErrFailed)
	}
	return err
}

// refusedLocked is the error by which the projector's state refuses
// action (pause, resume, rebuild), or nil; p.mu is held.
func (p *Projector[M]) refusedLocked(action string) error {
	var err error
	switch p.stateLocked() {
	case Stopped:
		err = ErrNotRunning
	case Failed:
		err = fmt.Errorf("%w (resume retries it, reset replays it from the start): %s", ErrFailed, p.lastError)
	case Standby:
		err = ErrStandby
	default:
		return nil
	}
	return fmt.Errorf("projection %s: cannot %s: %w", p.name, action, err)
}

// retryFailed runs a failed projector started with Start again, and
// returns once the new run has begun (or another did).
func (p *Projector[M]) retryFailed(action string) error {
	p.mu.Lock()
	failed, retry, exited, began := p.failed && !p.running, p.retry, p.exited, p.began
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
	select {
	case <-began:
		return nil
	case <-exited:
		return fmt.Errorf("projection %s: cannot %s: %w (stopped)", p.name, action, ErrNotRunning)
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
	if err := p.asWriter(ctx, p.reset, true); err != nil {
		return err
	}
	p.mu.Lock()
	failed, owned := p.failed && !p.running, p.retry != nil
	p.mu.Unlock()
	if failed && owned {
		return p.retryFailed("reset")
	}
	return nil
}

// asWriter runs do as the only writer of the checkpoint: in the applier
// of the running projector (then, if restart, the session reloads the
// checkpoint), or here, under runMu, from the stored checkpoint if none
// runs.
func (p *Projector[M]) asWriter(ctx context.Context, do func(ctx context.Context) error, restart bool) error {
	p.mu.Lock()
	runDone := p.runDone
	p.mu.Unlock()
	if runDone != nil {
		req := request{do: do, restart: restart, done: make(chan error, 1)}
		select {
		case p.requests <- req:
			select {
			case err := <-req.done:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-runDone:
			// Run ended meanwhile: do it here.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.runMu.Lock()
	defer p.runMu.Unlock()
	return p.loadAnd(ctx, do)
}

// loadAnd runs do from the stored checkpoint (the one held may be stale
// between sessions); the caller is the only writer.
func (p *Projector[M]) loadAnd(ctx context.Context, do func(ctx context.Context) error) error {
	if err := p.load(ctx); err != nil {
		return err
	}
	return do(ctx)
}

// load reads the active generation and its checkpoint.
func (p *Projector[M]) load(ctx context.Context) error {
	gen := uint64(0)
	if p.parent != nil {
		gen = p.gen // a builder's generation is fixed
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
	p.gen, p.position, p.parked, p.loaded = gen, cp.Position, cp.Parked, true
	p.mu.Unlock()
	return nil
}

// slot is the target's name of the generation applied.
func (p *Projector[M]) slot() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slotName(p.name, p.gen)
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
	p.replayUntil = max(p.replayUntil, p.position)
	p.position, p.parked = 0, 0
	p.rebuilding = true
	p.mu.Unlock()
	return nil
}

// Position is the checkpoint the projector holds: the last position it
// committed or loaded (0 before it first loads it; Status loads it).
func (p *Projector[M]) Position() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.position
}

// Status reports the projector's state and progress; it reads the store's
// head to compute the lag.
func (p *Projector[M]) Status(ctx context.Context) (Status, error) {
	var head uint64
	for e, err := range p.store.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if err != nil {
			return Status{}, err
		}
		head = e.Position
	}
	p.mu.Lock()
	stale := !p.loaded || p.standby
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
		if !p.loaded || p.standby {
			p.gen, p.position, p.parked, p.loaded = gen, cp.Position, cp.Parked, true
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Name:            p.name,
		State:           p.stateLocked(),
		Position:        p.position,
		Head:            head,
		EventsPerSecond: p.rate.perSecond(p.opts.Now()),
		LastError:       p.lastError,
		LastErrorAt:     p.lastErrorAt,
		Parked:          p.parked,
		Generation:      p.gen,
		Rebuild:         p.rb.status(head),
	}
	if head > s.Position {
		s.Lag = head - s.Position
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

// stateLocked derives the state; p.mu is held.
func (p *Projector[M]) stateLocked() State {
	switch {
	case p.failed:
		return Failed
	case !p.running:
		return Stopped
	case p.standby:
		return Standby
	case p.paused:
		return Paused
	case p.rebuilding, p.rb != nil:
		return Rebuilding
	}
	return Running
}

func (p *Projector[M]) setStandby(b bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.standby = b
}

// fail marks the projector failed and logs it: the failure is in the log
// when it happens, not when the projector's owner collects it.
func (p *Projector[M]) fail(f *FailedError) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	p.log.Error("projection failed: resume retries it, reset replays it from the start",
		"position", f.Position, "attempts", f.Attempts, "err", f.Err)
}

// noteError records err as the last error and logs it: an error the
// projector goes on after (it retries, parks or gives up a rebuild).
func (p *Projector[M]) noteError(err error) {
	p.mu.Lock()
	p.lastError = truncate(err.Error())
	p.lastErrorAt = p.opts.Now()
	pos := p.position
	p.mu.Unlock()
	p.log.Warn("projection error", "position", pos, "err", err)
}

// WaitFor waits until the projector has dealt with the global position
// pos (its checkpoint is at or past it), or ctx ends. After an append
// acknowledged at position pos, it is how a caller reads its own write
// from the read model: the asynchronous projection's answer to inline
// projections (see docs/projections.md). It watches this projector's
// commits: call it on the running instance, with a deadline.
func (p *Projector[M]) WaitFor(ctx context.Context, pos uint64) error {
	for {
		p.mu.Lock()
		reached, progress := p.position >= pos && p.loaded, p.progress
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
