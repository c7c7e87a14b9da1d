package projection

import "time"

// Bounds of the projector. Options beyond them are clamped, as documented
// on Options and ErrorPolicy.
const (
	// DefaultBatchEvents is how many subscription messages one transaction
	// applies at most when Options.BatchEvents is 0.
	DefaultBatchEvents = 256
	// MaxBatchEvents bounds Options.BatchEvents: a transaction holds its
	// batch in memory and, on PostgreSQL, its locks until it commits.
	MaxBatchEvents = 10_000
	// The subscription reader runs ahead of the applier by at most one
	// batch: its channel holds BatchEvents messages, so a slow target
	// stops the reading instead of growing memory.

	// DefaultMaxRetries is how many times a failing event (or a failing
	// transaction) is retried when ErrorPolicy.MaxRetries is 0.
	DefaultMaxRetries = 5
	// MaxRetriesLimit bounds ErrorPolicy.MaxRetries.
	MaxRetriesLimit = 100
	// DefaultRetryBackoff is the pause before the first retry when
	// ErrorPolicy.Backoff is 0; each later retry waits twice as long.
	DefaultRetryBackoff = 100 * time.Millisecond
	// MaxRetryBackoff caps the pause between two retries.
	MaxRetryBackoff = 30 * time.Second

	// MaxNameBytes bounds a projection's name (it is a key of the
	// checkpoint table and part of the embedded target's keys).
	MaxNameBytes = 200
	// MaxErrorBytes bounds the error text recorded with a parked event
	// and kept as the last error.
	MaxErrorBytes = 4096
	// MaxParkedListed bounds the parked events one ParkedEvents call
	// returns.
	MaxParkedListed = 1000

	// rateWindow is the span over which Status.EventsPerSecond is
	// measured, in one-second buckets.
	rateWindow = 10
	// resubscribeDelay is the pause before a projector whose store
	// subscription failed subscribes again from its checkpoint.
	resubscribeDelay = time.Second

	// LeasePollInterval is how often a standby projector asks a target
	// with leases (Leaser) whether the projection's lease is free: the
	// longest a standby waits after the running instance stops or dies
	// (on PostgreSQL, once the server has ended the dead session).
	LeasePollInterval = 500 * time.Millisecond
	// LeaseCheckInterval is how often the holder of a PostgreSQL lease
	// checks that the lease's connection is still alive; a lost
	// connection frees the lock, so the holder stops applying and waits
	// for the lease again.
	LeaseCheckInterval = 2 * time.Second
	// DefaultPebbleBlockCacheBytes is the embedded target's block cache
	// when PebbleOptions.BlockCacheBytes is 0 (as the embedded store's).
	DefaultPebbleBlockCacheBytes = 128 << 20
	// DefaultPebbleMemTableBytes is the size of one of the embedded
	// target's memtables when PebbleOptions.MemTableBytes is 0.
	DefaultPebbleMemTableBytes = 32 << 20
	// pebbleMemTablesMax is how many memtables may wait to be flushed
	// before the target's writes stall.
	pebbleMemTablesMax = 2
	// modelSchemaNameBytes is how much of a projection's name shows in
	// its PostgreSQL model schema's name (rm_<name>_<hash>[_g<n>]), which
	// must fit PostgreSQL's 63 bytes.
	modelSchemaNameBytes = 28
	// dropTimeout bounds the dropping of a rebuild's generation when the
	// rebuild is given up.
	dropTimeout = 10 * time.Second
	// maxGenerationTxAttempts bounds the runs of a PostgreSQL switch or
	// drop of a generation that the server rolled back (a deadlock with
	// a dead instance's last statement), generationRetryPause the first
	// pause between two (doubled each time: 20+40+80+160 ms in all).
	maxGenerationTxAttempts = 5
	generationRetryPause    = 20 * time.Millisecond
	// leaseCloseTimeout bounds the closing of a lease's connection.
	leaseCloseTimeout = 5 * time.Second
)
