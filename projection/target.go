package projection

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// A Target holds read models and the checkpoints of the projections that
// write them. M is what a projection's handler writes through: a
// transaction of the target (pgx.Tx for PostgreSQL, KV for the in-memory
// and embedded targets).
//
// Invariant: a Tx's read-model writes, its checkpoint and its parked
// events become visible together, at Commit, or not at all. This is the
// whole of the exactly-once effect: an event is applied if and only if the
// stored checkpoint has passed it.
type Target[M any] interface {
	// Begin opens a transaction for the named projection.
	Begin(ctx context.Context, name string) (Tx[M], error)
	// Load returns the stored checkpoint of the named projection; the zero
	// Checkpoint if there is none.
	Load(ctx context.Context, name string) (Checkpoint, error)
	// ParkedEvents lists up to limit (at most MaxParkedListed) parked
	// events of the named projection, oldest first.
	ParkedEvents(ctx context.Context, name string, limit int) ([]ParkedEvent, error)
}

// A Leaser is a Target that keeps a projection to one running instance
// across processes. A Projector on a Leaser applies events only while it
// holds the projection's lease; without it, it waits in state Standby and
// asks again every LeasePollInterval.
//
// The lease is an optimisation of who works, not the safety of the
// effect: the checkpoint check of SaveCheckpoint still makes a second
// writer fail rather than apply twice, should two instances ever both
// believe they hold the lease (a partition between a holder and its
// database, until the database ends the holder's session).
type Leaser interface {
	// TryLease takes the named projection's lease if it is free, and
	// returns nil (and no error) if another instance holds it.
	TryLease(ctx context.Context, name string) (Lease, error)
}

// A Lease is held until Release, or until it is lost.
type Lease interface {
	// Lost is closed if the lease is lost before Release (on PostgreSQL,
	// its connection broke): the holder must stop applying.
	Lost() <-chan struct{}
	// Release gives the lease up; it may be called more than once.
	Release()
}

// Tx is one transaction of a Target, for one projection.
type Tx[M any] interface {
	// Model is what the handler writes the read model through.
	Model() M
	// SaveCheckpoint stores cp as the projection's checkpoint, if the
	// stored one is still at position prev; otherwise it fails with
	// ErrCheckpointMoved (and the transaction must be rolled back).
	SaveCheckpoint(ctx context.Context, prev uint64, cp Checkpoint) error
	// Park records an event the projection gave up on.
	Park(ctx context.Context, pe ParkedEvent) error
	// ClearParked forgets the projection's parked events.
	ClearParked(ctx context.Context) error
	// Commit makes the transaction's writes durable and visible.
	Commit(ctx context.Context) error
	// Rollback discards the transaction; after Commit it does nothing.
	Rollback(ctx context.Context) error
}

// Checkpoint is what a target remembers of a projection.
type Checkpoint struct {
	// Position is the global position of the last event the projection
	// has dealt with (applied, parked or filtered out); 0 before any.
	Position uint64
	// Parked counts the events parked since the last reset.
	Parked uint64
}

// ParkedEvent is an event a projection gave up on under the Park policy.
type ParkedEvent struct {
	Position uint64    `json:"position"`
	EventID  uuid.UUID `json:"eventId"`
	Stream   string    `json:"stream"`
	Type     string    `json:"type"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	ParkedAt time.Time `json:"parkedAt"`
}

// KV is the read model of the in-memory and embedded targets: an ordered
// key-value space of one projection (each projection has its own: keys
// of two projections never meet), read and written inside one
// transaction (reads see the transaction's own writes).
type KV interface {
	// Get returns the value of key and whether it exists.
	Get(key []byte) (value []byte, ok bool, err error)
	Set(key, value []byte) error
	Delete(key []byte) error
	// DeletePrefix deletes every key that starts with prefix; an empty
	// prefix deletes the projection's whole read model (not its
	// checkpoint).
	DeletePrefix(prefix []byte) error
}

func clampLimit(limit int) int {
	if limit <= 0 || limit > MaxParkedListed {
		return MaxParkedListed
	}
	return limit
}
