package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Options tune a run.
type Options struct {
	// Logger gets the run's warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// CheckpointEvents is how many events of $all the run takes between
	// two checkpoints in the manager's stream; 0 means
	// DefaultCheckpointEvents. A restart reads again at most that many.
	CheckpointEvents int
	// SendTimeout bounds one command's send or probe; 0 means
	// DefaultSendTimeout.
	SendTimeout time.Duration
	// LeaseTTL is the time to live of the run's lease (see Run); 0 means
	// DefaultLeaseTTL. A run killed while it held the lease is taken over
	// that long after its last renewal.
	LeaseTTL time.Duration
	// Holder names the run in its lease, for the others on standby and
	// for Inspect; empty means the host's name, the process id and a
	// random suffix.
	Holder string
}

// Limits of a run.
const (
	DefaultCheckpointEvents = 1000
	DefaultSendTimeout      = 30 * time.Second
	// MaxActiveInstances bounds the instances not finished: a run refuses
	// to start more, and fails.
	MaxActiveInstances = 100_000
	// MaxSending bounds the commands in flight over every instance.
	MaxSending = 1024
	// eventBuffer bounds the events of $all read ahead of the run, and
	// controlBuffer those of its control stream.
	eventBuffer   = 256
	controlBuffer = 16
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointEvents <= 0 {
		o.CheckpointEvents = DefaultCheckpointEvents
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	return o
}

// managerRecord is an entry of the manager's stream: an instance
// started or finished, or the position of $all taken so far.
type managerRecord struct {
	Kind     string          `json:"kind"` // "Started", "Finished", "Checkpoint", "Control", "Reopened", "Dismissed"
	ID       string          `json:"id,omitempty"`
	Position annals.Position `json:"position,omitempty"`
	Status   Status          `json:"status,omitempty"`  // Finished: done or failed
	Error    string          `json:"error,omitempty"`   // Finished: why it failed
	Control  uint64          `json:"control,omitempty"` // Control: one past the control event taken
}

// run is one Run's state, owned by its loop goroutine.
type run[S, E any] struct {
	m        *Manager[S, E]
	store    annals.Store
	d        Dispatcher
	opts     Options
	active   map[string]*instance[S]
	next     annals.ExpectedRevision // of the manager's stream
	position annals.Position         // the last event of $all taken
	controls uint64                  // one past the last control event taken
	taken    int                     // events taken since the last checkpoint
	results  chan result
	sending  int             // sends in flight, over every instance
	dirty    map[string]bool // instances to advance at the next pump
	starved  map[string]bool // instances that wait for room under MaxSending
	wakes    wakeHeap
}

// result is the answer to one send of one instance.
type result struct {
	id     string
	send   send
	answer answer
}

// Run runs the manager on store until ctx ends or a write fails: it
// takes the events of $all from its checkpoint on, decides them, sends
// the commands through d, and fires the timers.
//
// One Run of a manager works at a time, across processes: Run first takes
// the manager's lease, and waits on standby while another run holds it.
// A Run whose lease was taken over (it could not renew it in time) stops
// working and goes back to standby.
func (m *Manager[S, E]) Run(ctx context.Context, store annals.Store, d Dispatcher, opts Options) error {
	if err := m.validate(); err != nil {
		return err
	}
	opts = opts.withDefaults()
	if opts.LeaseTTL < MinLeaseTTL || opts.LeaseTTL > MaxLeaseTTL {
		return ErrLeaseTTL
	}
	for {
		l, err := m.takeLease(ctx, store, opts)
		if err != nil {
			return err
		}
		err = m.runLeased(ctx, store, d, opts, l)
		if !errors.Is(err, errLeaseLost) || ctx.Err() != nil {
			return err
		}
		opts.Logger.Warn("process: the lease was lost, back on standby", slog.String("manager", m.Name))
	}
}

// runLeased runs the manager while l is kept, and releases it at the end.
// It fails with errLeaseLost if the lease was lost, or if a write of the
// run conflicted because another run took the lease over.
func (m *Manager[S, E]) runLeased(ctx context.Context, store annals.Store, d Dispatcher, opts Options, l *lease) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		l.keep(lctx, cancel)
	}()
	err := m.runHeld(lctx, store, d, opts)
	lost := errors.Is(context.Cause(lctx), errLeaseLost)
	cancel(nil)
	<-kept
	if !lost && errors.Is(err, annals.ErrWrongExpectedRevision) {
		lost = errors.Is(l.write(ctx, false), annals.ErrWrongExpectedRevision)
	}
	if lost {
		return errLeaseLost
	}
	if rerr := l.write(ctx, true); rerr != nil {
		opts.Logger.Warn("process: the lease was not released", slog.String("manager", m.Name), slog.Any("error", rerr))
	}
	return err
}

// runHeld is one run under a held lease.
func (m *Manager[S, E]) runHeld(ctx context.Context, store annals.Store, d Dispatcher, opts Options) error {
	r := &run[S, E]{m: m, store: store, d: d, opts: opts, active: map[string]*instance[S]{},
		next: annals.NoStream, results: make(chan result, MaxInFlight), dirty: map[string]bool{}, starved: map[string]bool{}}
	if err := r.recover(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := inputs{events: make(chan annals.Event, eventBuffer), controls: make(chan annals.Event, controlBuffer), errs: make(chan error, 2)}
	go r.follow(ctx, in.events, in.errs)
	go r.followControl(ctx, in.controls, in.errs)
	err := r.loop(ctx, in)
	cancel()
	for ; r.sending > 0; r.sending-- {
		<-r.results // let the sends in flight end before returning
	}
	return err
}

// recover folds the manager's stream (the instances not finished, the
// checkpoint) and loads the instances.
func (r *run[S, E]) recover(ctx context.Context) error {
	ids := map[string]bool{}
	for ev, err := range r.store.ReadStream(ctx, r.m.managerStream(), annals.ReadStreamOptions{}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return err
		}
		r.next = annals.Exact(ev.Revision)
		var mr managerRecord
		if err := json.Unmarshal(ev.Data, &mr); err != nil {
			return fmt.Errorf("process: %s at revision %d: %w", r.m.managerStream(), ev.Revision, err)
		}
		switch mr.Kind {
		case "Started":
			ids[mr.ID] = true
		case "Finished":
			delete(ids, mr.ID)
		case "Checkpoint":
			r.position = mr.Position
		case "Control":
			r.controls = mr.Control
		case "Reopened":
			ids[mr.ID] = true
		}
	}
	for id := range ids {
		in, err := r.m.load(ctx, r.store, id)
		if err != nil {
			return err
		}
		r.active[id], r.dirty[id] = in, true
		if err := r.settle(ctx, in); err != nil {
			return err
		}
	}
	return nil
}

// follow feeds the events of $all after the checkpoint to the loop.
func (r *run[S, E]) follow(ctx context.Context, out chan<- annals.Event, errs chan<- error) {
	opts := annals.SubscribeAllOptions{From: annals.After(r.position), Filter: r.m.Filter}
	if r.position == 0 {
		opts.From = annals.Start
	}
	forward(ctx, r.store.SubscribeToAll(ctx, opts), "$all", out, errs)
}

// forward hands a subscription's events to the loop, and its end (an
// error, or the subscription ending by itself) to errs.
func forward(ctx context.Context, sub iter.Seq2[annals.Message, error], what string, out chan<- annals.Event, errs chan<- error) {
	for msg, err := range sub {
		if err != nil {
			errs <- err
			return
		}
		if msg.Kind != annals.MessageEvent {
			continue
		}
		select {
		case out <- msg.Event:
		case <-ctx.Done():
			return
		}
	}
	errs <- fmt.Errorf("process: the subscription to %s ended", what)
}

// inputs are what the loop waits for besides the sends' answers.
type inputs struct {
	events, controls chan annals.Event // of $all; of the control stream
	errs             chan error        // a subscription's end
}

func (r *run[S, E]) loop(ctx context.Context, in inputs) error {
	for {
		wake, err := r.pump(ctx)
		if err != nil {
			return err
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !wake.IsZero() {
			t = time.NewTimer(max(0, wake.Sub(r.opts.Now())))
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-in.errs:
			return err
		case ev := <-in.events:
			err = r.take(ctx, ev)
		case ev := <-in.controls:
			err = r.control(ctx, ev)
		case res := <-r.results:
			err = r.answered(ctx, res)
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return err
		}
	}
}

// skips reports whether the event is one the manager never takes: a
// process manager's own record, or a system event without a filter.
func (r *run[S, E]) skips(ev annals.Event) bool {
	return strings.HasPrefix(ev.Stream, streamPrefix) || (r.m.Filter == nil && strings.HasPrefix(ev.Stream, "$"))
}
