package annals

import (
	"context"
	"time"
)

// GroupCommit describes one group commit: the writes a store's writer made
// durable together, with one fsync (embedded) or one COMMIT (postgres). A
// group that wrote nothing (every write in it refused) is not one.
// Stores that group their writes report each group to the OnGroupCommit
// function of their options, from the writer itself: the function must
// return at once and never block (package metrics counts them).
type GroupCommit struct {
	// Writes counts the appends, deletes and metadata writes of the group,
	// refused ones included; Events the events it wrote, Bytes their size.
	Writes, Events, Bytes int
	// Sync is how long the group took to become durable once handed to
	// the engine: the WAL write and fdatasync of pebble (embedded), the
	// rows and COMMIT round trip (postgres).
	Sync time.Duration
}

// PositionReporter is a Store that knows the position of the last event
// it has made visible: the head of $all. The embedded and postgres stores
// are one; lag (subscriptions, projections) is measured against it.
type PositionReporter interface {
	Position() Position
}

// ReadinessStream is the stream whose expectation a store's Ready checks:
// an append of no events, which goes through the store's writer and
// writes nothing.
const ReadinessStream = "annals-readiness"

// ReadyChecker is a Store that can tell it is open and its writer takes
// writes (the disk not full, the database reachable), without writing:
// what a readiness probe asks. The stores of this module are all one.
type ReadyChecker interface {
	Ready(ctx context.Context) error
}
