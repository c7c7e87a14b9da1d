package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/annals/annals"
)

// One Run of a manager works at a time, across processes, on every store:
// a Run first takes the manager's lease, a stream of its own
// ("process.<Name>.lease") whose last record names the holder. The holder
// renews it every third of its time to live by appending at the revision it
// wrote last; a second Run waits on standby and takes the lease when the
// holder releases it, or when the stream has not moved for a whole time to
// live by the waiter's own clock (so the clocks of two machines never have
// to agree). A holder that could not renew for two thirds of the time to
// live stops before anyone may take over.
//
// The lease is for liveness, not for safety: every write of a run is at
// an expected revision and every command carries its idempotency key, so
// two runs that both believed they held the lease (a holder paused past
// its time to live) make one of them fail on a conflict, never a step
// taken twice.

// Limits of the lease.
const (
	DefaultLeaseTTL = 15 * time.Second
	MinLeaseTTL     = 50 * time.Millisecond
	MaxLeaseTTL     = 10 * time.Minute
	// leaseRecordsKept is the $maxCount of the lease stream: a holder
	// renews every third of the time to live, so only the last few
	// records matter.
	leaseRecordsKept = 8
	leaseRecordType  = recordType + "lease"
)

// ErrLeaseTTL is returned by Run for an Options.LeaseTTL out of range.
var ErrLeaseTTL = fmt.Errorf("process: the lease's time to live is %v to %v", MinLeaseTTL, MaxLeaseTTL)

// errLeaseLost ends a run whose lease was taken over or could not be
// renewed in time: the Run goes back to standby.
var errLeaseLost = errors.New("process: the lease was lost")

// leaseRecord is one record of the lease stream.
type leaseRecord struct {
	Holder   string `json:"holder"`
	TTLMilli int64  `json:"ttl_ms"`
	Released bool   `json:"released,omitempty"`
}

func leaseStream(name string) string { return streamPrefix + name + ".lease" }

// leaseWatch is a waiter's view of the lease stream: the revision it saw
// last, and when it first saw it, on its own clock.
type leaseWatch struct {
	seen  annals.ExpectedRevision
	since time.Time
	ttl   time.Duration
}

// free takes the stream's state at now (next: the revision to append at;
// rec: its last record, if found) and says whether the lease may be taken.
func (w *leaseWatch) free(next annals.ExpectedRevision, rec leaseRecord, found bool, now time.Time) bool {
	if !found || rec.Released {
		return true
	}
	if w.since.IsZero() || next != w.seen {
		w.seen, w.since, w.ttl = next, now, time.Duration(rec.TTLMilli)*time.Millisecond
		return false
	}
	return now.Sub(w.since) >= w.ttl
}

// lease is a held lease, owned by one goroutine at a time: keep while
// the run goes, then the Run.
type lease struct {
	store   annals.Store
	stream  string
	holder  string
	ttl     time.Duration
	next    annals.ExpectedRevision
	renewed time.Time // when the last renewal that succeeded began
}

// leaseState is the last record of a lease stream, if found; next is the
// revision to append at.
type leaseState struct {
	next     annals.ExpectedRevision
	rec      leaseRecord
	recorded time.Time
	found    bool
}

// lastLease reads the last record of the lease stream.
func lastLease(ctx context.Context, store annals.Store, stream string) (leaseState, error) {
	st := leaseState{next: annals.NoStream}
	for ev, err := range store.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return st, err
		}
		if err := json.Unmarshal(ev.Data, &st.rec); err != nil {
			return st, fmt.Errorf("process: the lease stream %s: %w", stream, err)
		}
		st.next, st.recorded, st.found = annals.Exact(ev.Revision), ev.Recorded, true
		break
	}
	return st, nil
}

// takeLease waits on standby until the manager's lease is free, and takes
// it; it fails when ctx ends or the store does.
func (m *Manager[S, E]) takeLease(ctx context.Context, store annals.Store, opts Options) (*lease, error) {
	var w leaseWatch
	logged := false
	for {
		st, err := lastLease(ctx, store, leaseStream(m.Name))
		if err != nil {
			return nil, err
		}
		if w.free(st.next, st.rec, st.found, time.Now()) {
			l := &lease{store: store, stream: leaseStream(m.Name), holder: opts.Holder, ttl: opts.LeaseTTL, next: st.next}
			err := l.write(ctx, false)
			if err == nil {
				if err := l.limit(ctx, st.next); err != nil {
					l.write(ctx, true) // give it back rather than leave it held a time to live
					return nil, err
				}
				return l, nil
			}
			if !errors.Is(err, annals.ErrWrongExpectedRevision) {
				return nil, err
			}
			w = leaseWatch{} // another waiter took it first
		} else if !logged {
			opts.Logger.Info("process: on standby, another run holds the lease", slog.String("manager", m.Name), slog.String("holder", st.rec.Holder))
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opts.LeaseTTL / 3):
		}
	}
}

// limit gives a new lease stream its $maxCount.
func (l *lease) limit(ctx context.Context, was annals.ExpectedRevision) error {
	if !was.IsNoStream() {
		return nil
	}
	_, err := l.store.SetStreamMetadata(ctx, l.stream, annals.Any, annals.StreamMetadata{MaxCount: leaseRecordsKept})
	return err
}

// write appends a record at the revision written last: a renewal, or the
// release.
func (l *lease) write(ctx context.Context, release bool) error {
	data, err := json.Marshal(leaseRecord{Holder: l.holder, TTLMilli: l.ttl.Milliseconds(), Released: release})
	if err != nil {
		return err
	}
	began := time.Now()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.ttl/3)
	defer cancel()
	res, err := l.store.Append(wctx, l.stream, l.next, annals.EventData{Type: leaseRecordType, Data: data})
	if err != nil {
		return err
	}
	l.next, l.renewed = res.NextExpected, began
	return nil
}

// keep renews the lease every third of its time to live until ctx ends,
// and calls lost when another run took it, or when two thirds of the time
// to live passed since the last renewal began: a waiter starts counting
// its time to live only once it sees that renewal, after it was written.
func (l *lease) keep(ctx context.Context, lost func(error)) {
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := l.write(ctx, false)
		if errors.Is(err, annals.ErrWrongExpectedRevision) || (err != nil && time.Since(l.renewed) >= 2*l.ttl/3) {
			lost(errLeaseLost)
			return
		}
	}
}
