// Package command handles commands on event-sourced streams: it loads a
// stream straight from the store (never from a read model), folds its
// events into state, asks pure domain code what happens next, and appends
// the new events at the revision it loaded. If another writer moved the
// stream in between, the store refuses the append; the handler loads
// again, decides again and retries with jittered backoff, up to a limit,
// then returns an *ConflictError the caller can show ("the seats changed,
// try again"). Domain errors from Decide are returned as they are.
//
// The domain is a Decider: an initial state and two pure functions,
// Evolve (state, event) → state and Decide (state, command) → events.
// A decider is tested without a store (package commandtest: given events,
// when a command, then events or an error) and runs unchanged over every
// annals.Store: memory, embedded, PostgreSQL, and a server (annals serve or
// KurrentDB) through package remote.
//
// A command may carry an id (WithID). Its events then record it in their
// metadata and get ids derived from it, so a command handled before (a
// client's retry after a lost answer) is recognised: the handler returns
// the first outcome and appends nothing.
//
// Snapshots (Handler.Snapshots) are optional. A snapshot names the revision
// and event id it reflects, and the append after it still states the
// stream's real revision, so a stale snapshot only costs more reading,
// never a wrong decision.
package command

// Decider is the domain logic of one kind of stream: S is its state, C its
// commands and E its events. Decide and Evolve must be pure: no I/O, no
// clock, no randomness they do not get in the command, so that deciding
// again after a conflict is safe and tests need no store.
type Decider[S, C, E any] struct {
	// Initial returns the state of a stream without events. It is a
	// function so that states holding maps or slices start fresh.
	Initial func() S
	// Evolve returns the state after event. It must accept every event
	// Decide returns, and every event ever recorded in such streams.
	Evolve func(state S, event E) S
	// Decide returns the events that command causes in state, or an error
	// (a domain error: "not enough seats"). No events and no error means
	// there is nothing to do.
	Decide func(state S, command C) ([]E, error)
}

// Fold returns the state after events, starting from Initial.
func (d Decider[S, C, E]) Fold(events ...E) S {
	s := d.Initial()
	for _, e := range events {
		s = d.Evolve(s, e)
	}
	return s
}
