// Package projection keeps read models up to date from the global log of
// any annals.Store: a Projector follows $all (optionally filtered by
// category, stream prefix or event type) in global order and applies each
// batch of events to a Target in one transaction that also stores the
// projection's checkpoint, the position of the last event it dealt with.
//
// Exactly-once effect: an event's changes to the read model are committed
// if and only if the checkpoint that passes it is, so a crash or a stop at
// any moment neither skips nor repeats an event. After a restart the
// projector reads the checkpoint back from the target and subscribes from
// the next position. Side effects outside the target (calls, emails) are
// not covered: they may happen more than once.
//
// Targets: Memory (in-process, for tests and rebuilt-at-start models),
// Pebble (embedded, durable, a KV read model) and Postgres (the handler
// writes its own tables through a pgx.Tx). A target is any Target; the
// type parameter M is what the handler writes through.
//
// Single instance: on a target with leases (Leaser; Postgres, through a
// session-level advisory lock) a projector applies only while it holds
// the projection's lease; a second instance, in any process, waits in
// state Standby and takes over when the first stops or dies. Pebble's
// directory is exclusive to one process; Memory is one process's.
//
// Errors: a failing event is retried alone with doubling backoff
// (ErrorPolicy), then the projection stops (Failed, the default) or the
// event is parked (recorded in the target in the transaction that moves
// the checkpoint past it) and the projection goes on.
//
// Invariants (checked by the tests):
//
//   - Events are applied in strictly increasing global position; an event
//     at or before the checkpoint is never applied again.
//   - The read-model changes of a transaction, its checkpoint and its
//     parked events commit together or not at all.
//   - The checkpoint is only moved from the position the projector read:
//     a second writer of the same projection fails with ErrCheckpointMoved
//     and resumes from the stored checkpoint instead of applying twice.
//   - Memory is bounded by BatchEvents: the subscription reader is at most
//     one batch ahead, and a batch holds at most one batch.
//   - Limits are named constants (limits.go).
//
// See docs/projections.md.
package projection
