package metrics

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/annals/annals"
	"github.com/prometheus/client_golang/prometheus"
)

// Store returns s measured by m: what goes through it is counted. It
// reports s's limits (annals.LimitsReporter), head
// (annals.PositionReporter) and readiness (annals.ReadyChecker, not
// counted as an append) if s does. Call it once per Metrics: the head's
// series are registered once.
func (m *Metrics) Store(s annals.Store) annals.Store {
	ms := &store{Store: s, m: m}
	if h, ok := s.(annals.PositionReporter); ok {
		ms.head = h
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "annals_head_position", Help: "The position of the last event the store has made visible.",
		}, func() float64 { return float64(h.Position()) }))
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "annals_subscription_max_lag_events",
			Help: "The largest lag of a live $all subscription: the head's position minus the last it delivered (an event, a checkpoint, or the head when it caught up).",
		}, func() float64 { return float64(m.subs.maxLag(h.Position())) }))
	}
	return ms
}

type store struct {
	annals.Store
	m    *Metrics
	head annals.PositionReporter // nil if the store knows no head
}

var (
	_ annals.LimitsReporter   = (*store)(nil)
	_ annals.PositionReporter = (*store)(nil)
	_ annals.ReadyChecker     = (*store)(nil)
)

// Ready asks the wrapped store (annals.ReadyChecker), uncounted; a store
// that cannot tell is taken as ready.
func (s *store) Ready(ctx context.Context) error {
	if r, ok := s.Store.(annals.ReadyChecker); ok {
		return r.Ready(ctx)
	}
	return nil
}

// Limits reports the wrapped store's limits, or the defaults.
func (s *store) Limits() annals.Limits {
	if r, ok := s.Store.(annals.LimitsReporter); ok {
		return r.Limits()
	}
	return annals.Limits{}.WithDefaults()
}

// Position reports the wrapped store's head, 0 if it knows none.
func (s *store) Position() annals.Position {
	if s.head == nil {
		return 0
	}
	return s.head.Position()
}

func (s *store) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events...)
	m := s.m
	m.appendTime.Observe(time.Since(start).Seconds())
	if err != nil {
		m.appends.WithLabelValues(outcome(err)).Inc()
		return res, err
	}
	m.appendsOK.Inc()
	if res.LastPosition != 0 {
		// A retried append (its ids already recorded) wrote nothing new,
		// but is answered as the first; both count as written here.
		m.appendEvents.Add(float64(len(events)))
		n := 0
		for i := range events {
			n += len(events[i].Data) + len(events[i].Metadata) + len(events[i].Type)
		}
		m.appendBytes.Add(float64(n))
	}
	return res, err
}

// AppendMulti counts a multi-stream append as one append of all its
// records, in the same series as Append.
func (s *store) AppendMulti(ctx context.Context, ma annals.MultiAppend) (annals.MultiAppendResult, error) {
	start := time.Now()
	res, err := s.Store.AppendMulti(ctx, ma)
	m := s.m
	m.appendTime.Observe(time.Since(start).Seconds())
	if err != nil {
		m.appends.WithLabelValues(outcome(err)).Inc()
		return res, err
	}
	m.appendsOK.Inc()
	m.appendEvents.Add(float64(len(ma.Records)))
	n := 0
	for i := range ma.Records {
		n += annals.EventSizeBytes(&ma.Records[i].Event)
	}
	m.appendBytes.Add(float64(n))
	return res, err
}

func (s *store) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	res, err := s.Store.Delete(ctx, stream, expected)
	s.m.deletes.WithLabelValues("delete", outcome(err)).Inc()
	return res, err
}

func (s *store) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	res, err := s.Store.Tombstone(ctx, stream, expected)
	s.m.deletes.WithLabelValues("tombstone", outcome(err)).Inc()
	return res, err
}

func (s *store) ReadStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return s.m.countRead("stream", s.Store.ReadStream(ctx, stream, opts))
}

func (s *store) ReadAll(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	return s.m.countRead("all", s.Store.ReadAll(ctx, opts))
}

func (s *store) SubscribeToStream(ctx context.Context, stream string, opts annals.SubscribeStreamOptions) iter.Seq2[annals.Message, error] {
	return s.m.follow("stream", s.Store.SubscribeToStream(ctx, stream, opts))
}

func (s *store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	return s.m.follow("all", s.Store.SubscribeToAll(ctx, opts))
}

// outcome names err's kind for the outcome label.
func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, annals.ErrWrongExpectedRevision):
		return OutcomeWrongExpected
	case errors.Is(err, annals.ErrInvalidInput):
		return OutcomeInvalid
	case errors.Is(err, annals.ErrStreamDeleted):
		return OutcomeDeleted
	case errors.Is(err, annals.ErrDuplicateEventID):
		return OutcomeDuplicate
	default:
		return OutcomeError
	}
}

// countRead counts one read of kind when it starts, and its events as they
// are yielded.
func (m *Metrics) countRead(kind string, seq iter.Seq2[annals.Event, error]) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		m.reads.WithLabelValues(kind).Inc()
		events := m.readEvents.WithLabelValues(kind)
		for e, err := range seq {
			if err == nil {
				events.Inc()
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// follow counts a subscription of kind as live while it is iterated, its
// events, and for $all the position it has delivered up to.
func (m *Metrics) follow(kind string, seq iter.Seq2[annals.Message, error]) iter.Seq2[annals.Message, error] {
	return func(yield func(annals.Message, error) bool) {
		live, events := m.subsLive.WithLabelValues(kind), m.subEvents.WithLabelValues(kind)
		live.Inc()
		defer live.Dec()
		var at *atomic.Uint64
		if kind == "all" {
			at = m.subs.add()
			defer m.subs.remove(at)
		}
		for msg, err := range seq {
			if err == nil {
				if msg.Kind == annals.MessageEvent {
					events.Inc()
				}
				if at != nil {
					at.Store(uint64(delivered(msg)) | knownBit)
				}
			}
			if !yield(msg, err) {
				return
			}
		}
	}
}

// delivered is the position up to which a subscription has delivered once
// it has passed msg on.
func delivered(msg annals.Message) annals.Position {
	if msg.Kind == annals.MessageEvent {
		return msg.Event.Position
	}
	return msg.Position
}

// knownBit marks a subscription's position as known (it has delivered
// something); positions stay below 2^63.
const knownBit = 1 << 63

// subscriptions are the live $all subscriptions' positions, for their lag.
type subscriptions struct {
	mu  sync.Mutex
	set map[*atomic.Uint64]struct{}
}

func newSubscriptions() *subscriptions {
	return &subscriptions{set: map[*atomic.Uint64]struct{}{}}
}

func (s *subscriptions) add() *atomic.Uint64 {
	at := new(atomic.Uint64)
	s.mu.Lock()
	s.set[at] = struct{}{}
	s.mu.Unlock()
	return at
}

func (s *subscriptions) remove(at *atomic.Uint64) {
	s.mu.Lock()
	delete(s.set, at)
	s.mu.Unlock()
}

// maxLag is the largest head minus delivered position among the
// subscriptions that have delivered something.
func (s *subscriptions) maxLag(head annals.Position) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lag uint64
	for at := range s.set {
		v := at.Load()
		if v&knownBit == 0 {
			continue
		}
		if p := annals.Position(v &^ knownBit); p < head {
			lag = max(lag, uint64(head-p))
		}
	}
	return lag
}

// ListStreams lists the wrapped store's streams (annals.StreamLister), or
// fails with errors.ErrUnsupported if it cannot.
func (s *store) ListStreams(ctx context.Context, opts annals.ListStreamsOptions) ([]annals.StreamInfo, error) {
	if l, ok := s.Store.(annals.StreamLister); ok {
		return l.ListStreams(ctx, opts)
	}
	return nil, fmt.Errorf("annals: this store cannot list its streams: %w", errors.ErrUnsupported)
}
