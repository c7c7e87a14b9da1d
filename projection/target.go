package projection

import (
	"context"
	"time"

	"github.com/annals/annals"
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
//
// Begin, Load and ParkedEvents take a slot: one generation of a
// projection (the projection's name for generation 0, see slotName), each
// with its own model, checkpoint and parked events. Generation, Switch
// and Drop take the projection's name. Queries of a target read the active
// generation; a Switch changes it in one transaction of the target, so a
// query sees the old read model or the new one, whole.
type Target[M any] interface {
	// Begin opens a transaction for the slot.
	Begin(ctx context.Context, slot string) (Tx[M], error)
	// Load returns the stored checkpoint of the slot; the zero Checkpoint
	// if there is none.
	Load(ctx context.Context, slot string) (Checkpoint, error)
	// ParkedEvents lists up to limit (at most MaxParkedListed) parked
	// events of the slot, oldest first.
	ParkedEvents(ctx context.Context, slot string, limit int) ([]ParkedEvent, error)
	// Generation returns the named projection's active generation: 0
	// until a switch.
	Generation(ctx context.Context, name string) (uint64, error)
	// Switch makes generation to the named projection's active one, if
	// from still is (else ErrGenerationMoved), and drops generation from
	// (model, checkpoint, parked events), in one transaction.
	Switch(ctx context.Context, name string, from, to uint64) error
	// Drop deletes generation gen of the named projection, a rebuild
	// given up; never the active one (ErrActiveGeneration).
	Drop(ctx context.Context, name string, gen uint64) error
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
	SaveCheckpoint(ctx context.Context, prev annals.Position, cp Checkpoint) error
	// Park records an event the projection gave up on.
	Park(ctx context.Context, pe ParkedEvent) error
	// Unpark forgets the parked event at position (it was replayed).
	Unpark(ctx context.Context, position annals.Position) error
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
	Position annals.Position
	// Parked counts the events parked since the last reset.
	Parked uint64
}

// ParkedEvent is an event a projection gave up on under the Park policy.
type ParkedEvent struct {
	Position annals.Position `json:"position"`
	EventID  uuid.UUID       `json:"eventId"`
	Stream   string          `json:"stream"`
	Type     string          `json:"type"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	ParkedAt time.Time       `json:"parkedAt"`
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
