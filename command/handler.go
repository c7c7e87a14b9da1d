package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/backoff"
	"github.com/google/uuid"
)

// Codec turns a domain's events into events to append and back. A
// *codec.Registry is one.
type Codec[E any] interface {
	// Encode returns the event to append for e; its ID is set by the
	// handler.
	Encode(e E) (annals.EventData, error)
	// Decode returns the domain event of a recorded one; ok false skips
	// the event.
	Decode(e annals.Event) (_ E, ok bool, _ error)
}

// Handler handles commands of one Decider on the streams of one store. Set
// its fields before the first Handle; it is then safe for concurrent use.
type Handler[S, C, E any] struct {
	Store   annals.Store
	Decider Decider[S, C, E]
	Codec   Codec[E]
	// Retry limits the retries after conflicts; the zero value takes the
	// defaults.
	Retry Retry
	// Snapshots, if not nil, keeps snapshots of the state of long streams.
	Snapshots *Snapshots[S]
}

// Result is the outcome of a handled command.
type Result[S, E any] struct {
	// State is the state after the command's events. For a repeated
	// command it is the stream's current state.
	State S
	// Events are the events the command appended: none if it decided
	// nothing; for a repeated command, the events of its first handling.
	Events []E
	// NextExpected is the revision of the stream after the command's last
	// event (or the revision the command was decided on, if it appended
	// nothing): what to expect for an append that follows this command.
	NextExpected annals.ExpectedRevision
	// FirstPosition and LastPosition are the global positions of the
	// command's events; 0 if none.
	FirstPosition, LastPosition annals.Position
	// Attempts is how many times the command was decided: 1 plus the
	// conflicts retried.
	Attempts int
	// Repeated says the command id was handled before: nothing was
	// appended this time and Events are the first outcome.
	Repeated bool
}

// Option configures one Handle.
type Option func(*handleOptions)

type handleOptions struct {
	id uuid.UUID
}

// WithID gives the command an id, which makes it idempotent: handled
// again (a client's retry), it appends nothing and returns the first
// outcome. See the package documentation for how far back it is
// recognised.
func WithID(id uuid.UUID) Option { return func(o *handleOptions) { o.id = id } }

var errNotConfigured = errors.New("command: the Handler needs a Store, a Codec and a Decider with Initial, Evolve and Decide")

// Handle handles cmd on stream: load, decide, append at the loaded
// revision; on a conflict, again, up to Retry.MaxAttempts times. It
// returns Decide's error as it is, a *ConflictError when every attempt
// lost the race, or the store's error.
func (h *Handler[S, C, E]) Handle(ctx context.Context, stream string, cmd C, opts ...Option) (Result[S, E], error) {
	var o handleOptions
	for _, opt := range opts {
		opt(&o)
	}
	if h.Store == nil || h.Codec == nil || h.Decider.Initial == nil || h.Decider.Evolve == nil || h.Decider.Decide == nil {
		return Result[S, E]{}, errNotConfigured
	}
	retry := h.Retry.withDefaults()
	var prev *loaded[S]
	for attempt := 1; ; attempt++ {
		res, l, err := h.attempt(ctx, stream, cmd, o.id, prev)
		res.Attempts = attempt
		prev = l
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, annals.ErrWrongExpectedRevision) {
			return res, err
		}
		if attempt >= retry.MaxAttempts {
			return res, &ConflictError{Stream: stream, Attempts: attempt, Err: err}
		}
		if err := backoff.Sleep(ctx, retry.backoff(attempt)); err != nil {
			return res, err
		}
	}
}

// attempt loads (or, after a conflict, catches up on prev), decides and
// appends once. On a conflict it returns what it loaded, for the next
// attempt to catch up on.
func (h *Handler[S, C, E]) attempt(ctx context.Context, stream string, cmd C, id uuid.UUID, prev *loaded[S]) (Result[S, E], *loaded[S], error) {
	l, err := h.load(ctx, stream, id, prev)
	if err != nil {
		return Result[S, E]{}, nil, err
	}
	if l.repeat != nil {
		res, err := h.repeated(ctx, stream, l.state, *l.repeat)
		return res, nil, err
	}
	events, err := h.Decider.Decide(l.state, cmd)
	if err != nil {
		return Result[S, E]{State: l.state, NextExpected: l.revision}, nil, err
	}
	if len(events) == 0 {
		return Result[S, E]{State: l.state, NextExpected: l.revision}, nil, nil
	}
	data := make([]annals.EventData, len(events))
	for i, e := range events {
		if data[i], err = h.Codec.Encode(e); err != nil {
			return Result[S, E]{}, nil, err
		}
		if id == (uuid.UUID{}) {
			data[i].ID = uuid.New()
			continue
		}
		data[i].ID = eventID(id, stream, i)
		if data[i].Metadata, err = withCommandID(data[i].Metadata, id); err != nil {
			return Result[S, E]{}, nil, err
		}
	}
	res, err := h.appendDecided(ctx, stream, id, &l, events, data)
	if errors.Is(err, annals.ErrWrongExpectedRevision) {
		// Nothing was folded into l.state after the load (Decide is
		// pure), so the next attempt may read only what came since.
		return res, &l, err
	}
	return res, nil, err
}

// appendDecided appends the decided events at the loaded revision.
func (h *Handler[S, C, E]) appendDecided(ctx context.Context, stream string, id uuid.UUID, l *loaded[S], events []E, data []annals.EventData) (Result[S, E], error) {
	ar, err := h.Store.Append(ctx, stream, l.revision, data...)
	if err != nil {
		var dup *annals.DuplicateEventError
		if id != (uuid.UUID{}) && errors.As(err, &dup) {
			// The command's events are already recorded, further back than
			// the load looked (before a snapshot's window). Event ids
			// derive from the stream too, so another stream means another
			// cause: report it as it is.
			if dup.Stream == stream {
				return h.repeatedAt(ctx, stream, l.state, id, dup.Revision)
			}
			return Result[S, E]{}, err
		}
		if id != (uuid.UUID{}) && errors.Is(err, annals.ErrDuplicateEventID) {
			// Without the structure (over the wire): load again, which
			// finds the command if it is where a load looks.
			return Result[S, E]{}, fmt.Errorf("%w (%w)", annals.ErrWrongExpectedRevision, err)
		}
		return Result[S, E]{}, err
	}
	state := l.state
	for _, e := range events {
		state = h.Decider.Evolve(state, e)
	}
	if h.Snapshots != nil {
		last, _ := ar.NextExpected.Revision()
		h.maybeSnapshot(ctx, stream, *l, state, last, data[len(data)-1].ID, commandRecord{ID: id, First: last + 1 - annals.Revision(len(data)), Last: last}, uint64(len(events)))
	}
	return Result[S, E]{
		State: state, Events: events, NextExpected: ar.NextExpected,
		FirstPosition: ar.FirstPosition, LastPosition: ar.LastPosition,
	}, nil
}

// repeated returns the first outcome of a command found at rec.
func (h *Handler[S, C, E]) repeated(ctx context.Context, stream string, state S, rec commandRecord) (Result[S, E], error) {
	res := Result[S, E]{State: state, NextExpected: annals.Exact(rec.Last), Repeated: true}
	opts := annals.ReadStreamOptions{From: rec.First, Limit: uint64(rec.Last-rec.First) + 1}
	for ev, err := range h.Store.ReadStream(ctx, stream, opts) {
		if err != nil {
			return Result[S, E]{}, err
		}
		if id, _ := CommandID(ev.Metadata); id != rec.ID {
			break
		}
		if res.FirstPosition == 0 {
			res.FirstPosition = ev.Position
		}
		res.LastPosition = ev.Position
		e, ok, err := h.Codec.Decode(ev)
		if err != nil {
			return Result[S, E]{}, err
		}
		if ok {
			res.Events = append(res.Events, e)
		}
	}
	return res, nil
}

// repeatedAt returns the first outcome of command id, whose first event
// the store says is at revision first.
func (h *Handler[S, C, E]) repeatedAt(ctx context.Context, stream string, state S, id uuid.UUID, first annals.Revision) (Result[S, E], error) {
	rec := commandRecord{ID: id, First: first, Last: first}
	for ev, err := range h.Store.ReadStream(ctx, stream, annals.ReadStreamOptions{From: first, Limit: annals.DefaultMaxAppendEvents}) {
		if err != nil {
			return Result[S, E]{}, err
		}
		if got, _ := CommandID(ev.Metadata); got != id {
			break
		}
		rec.Last = ev.Revision
	}
	return h.repeated(ctx, stream, state, rec)
}

// Load returns the current state of stream and the revision it reflects
// (NoStream for a stream without events), read from the store.
func (h *Handler[S, C, E]) Load(ctx context.Context, stream string) (S, annals.ExpectedRevision, error) {
	if h.Store == nil || h.Codec == nil || h.Decider.Initial == nil || h.Decider.Evolve == nil {
		var zero S
		return zero, annals.NoStream, errNotConfigured
	}
	l, err := h.load(ctx, stream, uuid.UUID{}, nil)
	return l.state, l.revision, err
}

// Handled reports whether the command with id was handled on stream and
// appended events there, as far back as a repeated command is
// recognised (see the package documentation). A command whose decision
// was no event leaves no trace, and is reported as not handled.
func (h *Handler[S, C, E]) Handled(ctx context.Context, stream string, id uuid.UUID) (bool, error) {
	if h.Store == nil || h.Codec == nil || h.Decider.Initial == nil || h.Decider.Evolve == nil {
		return false, errNotConfigured
	}
	if id == (uuid.UUID{}) {
		return false, errors.New("command: Handled needs a command id")
	}
	l, err := h.load(ctx, stream, id, nil)
	return err == nil && l.repeat != nil, err
}
