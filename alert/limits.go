package alert

import "time"

// Defaults and bounds. Zero (or negative) fields of Rules and Options take
// the defaults; fields beyond the bounds are clamped to them.
const (
	// DefaultLagEvents is the lag, in events, past which a projection is
	// reported as behind.
	DefaultLagEvents = 10_000
	// DefaultDiskFreeBytes is the free space under which the disk is
	// reported as nearly full.
	DefaultDiskFreeBytes = 1 << 30

	// DefaultInterval is how often Watch takes a snapshot.
	DefaultInterval = 5 * time.Second
	// MaxSnapshotTimeout bounds one snapshot: it gets the interval, at
	// most this, so that a stuck source cannot stall the watcher for long.
	MaxSnapshotTimeout = 10 * time.Second

	// DefaultQueueLength is how many alerts wait for each webhook; more
	// are dropped, so that a dead receiver costs a bounded amount of
	// memory and never slows the store.
	DefaultQueueLength = 256
	// MaxQueueLength bounds Options.QueueLength.
	MaxQueueLength = 1 << 16
	// DefaultMaxAttempts is how many POSTs one alert gets at most.
	DefaultMaxAttempts = 6
	// MaxAttemptsLimit bounds Options.MaxAttempts.
	MaxAttemptsLimit = 100
	// DefaultInitialBackoff is the pause before the second attempt; each
	// later one waits twice as long, up to MaxBackoff.
	DefaultInitialBackoff = time.Second
	// DefaultMaxBackoff caps the pause between two attempts.
	DefaultMaxBackoff = 60 * time.Second
	// DefaultTimeout bounds one POST, from dialling to the response's
	// headers and the reading of its body.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxDeliveries is how many finished deliveries Deliveries
	// keeps for display.
	DefaultMaxDeliveries = 100
	// MaxDeliveriesLimit bounds Options.MaxDeliveries.
	MaxDeliveriesLimit = 10_000

	// MaxResponseBytes is how much of a receiver's answer is read: enough
	// to let the connection be reused after a short answer, and to quote
	// an error, without letting a receiver make us read without end.
	MaxResponseBytes = 4 << 10
	// MaxErrorQuoteBytes is how much of a failed answer's body Delivery.Err
	// quotes.
	MaxErrorQuoteBytes = 256
	// CloseTimeout bounds Close: workers still busy after it (a Client
	// whose transport ignores cancellation) are left to finish alone.
	CloseTimeout = 5 * time.Second
)
