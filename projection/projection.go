package projection

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/annals/annals"
)

// Projection describes a read model: which events it reads and how it
// applies them. M is the target's model type (see Target).
type Projection[M any] struct {
	// Name identifies the projection's checkpoint in its target. Required;
	// at most MaxNameBytes, no NUL or 0x01 byte.
	Name string
	// Filter, if not nil, limits the events handled (by category, stream
	// prefix, event type...). Filtered-out events still advance the
	// checkpoint, in the store's checkpoint steps.
	Filter *annals.Filter
	// Handle applies one event to the read model through m, inside the
	// transaction that will also store the checkpoint. It must write only
	// through m: anything else (an email, a call to another service) is
	// not rolled back and may happen more than once. Required.
	Handle func(ctx context.Context, m M, e annals.Event) error
	// HandleBatch, if set, applies several events at once, in the same
	// transaction: what Handle would do to each, in order (on PostgreSQL,
	// their statements sent in one round trip: pgx.Batch). The projector
	// calls it with the events of a transaction (split where Replaying
	// changes); if it fails, the transaction is rolled back and applied
	// again through Handle, event by event, which finds the failing event
	// for the error policy. So Handle stays required, and the two must
	// agree. Optional.
	HandleBatch func(ctx context.Context, m M, events []annals.Event) error
	// Setup prepares an empty read model through m: on PostgreSQL it
	// creates the projection's tables (with unqualified names: the target
	// runs each transaction with search_path at the projection's own
	// schema). It runs in a transaction of its own whenever the
	// projector starts from position 0 (the first run, after a Reset, and
	// for each new generation of a blue/green rebuild), so it must be
	// idempotent: CREATE TABLE IF NOT EXISTS. Optional.
	Setup func(ctx context.Context, m M) error
	// Reset deletes the read model through m, for Projector.Reset.
	// Optional; without it Reset fails with ErrNoReset.
	Reset func(ctx context.Context, m M) error
	// Policy says what to do when Handle fails.
	Policy ErrorPolicy
}

// OnFailure is what a projection does with an event once its retries are
// spent.
type OnFailure uint8

const (
	// Stop the projection (state failed) at the event: the default. The
	// read model stays consistent with a prefix of the log.
	Stop OnFailure = iota
	// Park the event (record it with its error in the target, in the
	// transaction that moves the checkpoint past it) and go on.
	Park
)

// ErrorPolicy is a projection's answer to a failing handler.
type ErrorPolicy struct {
	// MaxRetries is how many times a failing event is retried, alone in
	// its own transaction, before OnFailure applies: 0 means
	// DefaultMaxRetries, a negative value none; at most MaxRetriesLimit.
	MaxRetries int
	// Backoff is the pause before the first retry (0 means
	// DefaultRetryBackoff); it doubles with each retry, up to
	// MaxRetryBackoff.
	Backoff time.Duration
	// OnFailure: Stop (the default) or Park.
	OnFailure OnFailure
}

func (p ErrorPolicy) withDefaults() ErrorPolicy {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = DefaultMaxRetries
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	case p.MaxRetries > MaxRetriesLimit:
		p.MaxRetries = MaxRetriesLimit
	}
	if p.Backoff <= 0 {
		p.Backoff = DefaultRetryBackoff
	}
	if p.Backoff > MaxRetryBackoff {
		p.Backoff = MaxRetryBackoff
	}
	return p
}

// backoff is the pause before retry number attempt (1-based).
func (p ErrorPolicy) backoff(attempt int) time.Duration {
	d := p.Backoff
	for i := 1; i < attempt && d < MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, MaxRetryBackoff)
}

// Options tune a projector.
type Options struct {
	// BatchEvents is the most subscription messages applied in one
	// transaction: 0 means DefaultBatchEvents; clamped to MaxBatchEvents.
	// A transaction takes what has arrived, up to this many, so a live
	// projection commits each event as it comes and a catching-up one
	// commits full batches.
	BatchEvents int
	// Now is the clock (for events per second and parking times); nil
	// means time.Now.
	Now func() time.Time
	// Logger receives the projector's errors as they happen: a failure
	// (Error: the error policy gave up), and each error it goes on after
	// (Warn: a retry, a parked event, a lost lease, a rebuild given up),
	// with the projection's name and position. Nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.BatchEvents <= 0 {
		o.BatchEvents = DefaultBatchEvents
	}
	o.BatchEvents = min(o.BatchEvents, MaxBatchEvents)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (p *Projection[M]) validate() error {
	switch {
	case p.Name == "":
		return invalid("a projection needs a name")
	case len(p.Name) > MaxNameBytes:
		return invalid("name of %d bytes, at most %d", len(p.Name), MaxNameBytes)
	case strings.IndexByte(p.Name, 0) >= 0 || strings.IndexByte(p.Name, generationSeparator) >= 0:
		// NUL ends a name in the KV targets' keys; 0x01 separates a
		// name from its generation (slotName).
		return invalid("name %q holds a NUL or 0x01 byte", p.Name)
	case p.Handle == nil:
		return invalid("projection %s has no Handle func", p.Name)
	}
	if err := p.Filter.Validate(); err != nil {
		return err
	}
	return nil
}
