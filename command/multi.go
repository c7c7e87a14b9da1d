package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/backoff"
	"github.com/google/uuid"
)

// MultiDecide decides a command over several streams at once: it gets
// the streams' states in the order HandleStreams was given them and
// returns each stream's events in the same order (nil or no entry for a
// stream it leaves alone). Like Decide, it must be pure.
type MultiDecide[S, C, E any] func(states []S, cmd C) ([][]E, error)

// MultiResult is the outcome of a command handled over several streams.
type MultiResult[S, E any] struct {
	// States are the streams' states after the command's events, in the
	// order of the streams.
	States []S
	// Events are the events appended to each stream.
	Events [][]E
	// FirstPosition and LastPosition are the global positions of the
	// command's events; 0 if none.
	FirstPosition, LastPosition annals.Position
	// Attempts is how many times the command was decided.
	Attempts int
	// Repeated says the command id was found in one of the streams: it
	// was handled before, and nothing was appended this time.
	Repeated bool
}

// HandleStreams handles cmd over several streams of the Handler's
// decider, as one decision: it loads each stream, calls decide once with
// every state, and appends the events to their streams in one
// annals.Store.AppendMulti with each loaded revision as a check, streams
// left alone included, so that a change to any stream the decision read
// makes it decide again (up to Retry.MaxAttempts times, as Handle).
//
// With WithID the events carry the command id, and a command found in
// any of the streams is answered as repeated. The streams must be
// distinct, at most annals.DefaultMaxAppendChecks of them. Snapshots are
// neither used nor written.
func (h *Handler[S, C, E]) HandleStreams(ctx context.Context, streams []string, cmd C, decide MultiDecide[S, C, E], opts ...Option) (MultiResult[S, E], error) {
	var o handleOptions
	for _, opt := range opts {
		opt(&o)
	}
	if h.Store == nil || h.Codec == nil || h.Decider.Initial == nil || h.Decider.Evolve == nil || decide == nil {
		return MultiResult[S, E]{}, errNotConfigured
	}
	if err := distinct(streams); err != nil {
		return MultiResult[S, E]{}, err
	}
	retry := h.Retry.withDefaults()
	for attempt := 1; ; attempt++ {
		res, err := h.attemptStreams(ctx, streams, cmd, decide, o.id)
		res.Attempts = attempt
		if err == nil || !errors.Is(err, annals.ErrWrongExpectedRevision) {
			return res, err
		}
		if attempt >= retry.MaxAttempts {
			return res, &ConflictError{Stream: fmt.Sprint(streams), Attempts: attempt, Err: err}
		}
		if err := backoff.Sleep(ctx, retry.backoff(attempt)); err != nil {
			return res, err
		}
	}
}

func distinct(streams []string) error {
	if len(streams) == 0 {
		return &annals.InvalidInputError{Field: "streams", Reason: "a command over streams needs at least one"}
	}
	seen := make(map[string]struct{}, len(streams))
	for _, s := range streams {
		if _, dup := seen[s]; dup {
			return &annals.InvalidInputError{Field: "streams", Reason: fmt.Sprintf("%q is given twice", s)}
		}
		seen[s] = struct{}{}
	}
	return nil
}

// attemptStreams loads, decides and appends once.
func (h *Handler[S, C, E]) attemptStreams(ctx context.Context, streams []string, cmd C, decide MultiDecide[S, C, E], id uuid.UUID) (MultiResult[S, E], error) {
	res := MultiResult[S, E]{States: make([]S, len(streams)), Events: make([][]E, len(streams))}
	m := annals.MultiAppend{Checks: make([]annals.StreamCheck, len(streams))}
	for i, stream := range streams {
		l, err := h.load(ctx, stream, id, nil)
		if err != nil {
			return MultiResult[S, E]{}, err
		}
		res.States[i] = l.state
		res.Repeated = res.Repeated || l.repeat != nil
		m.Checks[i] = annals.StreamCheck{Stream: stream, Expected: l.revision}
	}
	if res.Repeated {
		return res, nil
	}
	events, err := decide(res.States, cmd)
	if err != nil {
		return res, err
	}
	if len(events) > len(streams) {
		return res, fmt.Errorf("command: the decision returned events for %d streams, given %d", len(events), len(streams))
	}
	for i, evs := range events {
		for j, e := range evs {
			data, err := h.Codec.Encode(e)
			if err != nil {
				return res, err
			}
			if data.ID = uuid.New(); id != (uuid.UUID{}) {
				data.ID = eventID(id, streams[i], j)
				if data.Metadata, err = withCommandID(data.Metadata, id); err != nil {
					return res, err
				}
			}
			m.Records = append(m.Records, annals.Record{Stream: streams[i], Event: data})
		}
	}
	if len(m.Records) == 0 {
		return res, nil
	}
	ar, err := h.Store.AppendMulti(ctx, m)
	if err != nil {
		return res, err
	}
	for i, evs := range events {
		res.Events[i] = evs
		for _, e := range evs {
			res.States[i] = h.Decider.Evolve(res.States[i], e)
		}
	}
	res.FirstPosition, res.LastPosition = ar.FirstPosition, ar.LastPosition
	return res, nil
}
