// Package memory is the reference store: everything in memory, nothing
// durable. Use it in tests and examples; it passes the same conformance
// suite as the durable stores.
package memory

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/annals/annals/internal/links"
	"github.com/google/uuid"
)

// Options configure a Store.
type Options struct {
	Limits annals.Limits
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Store keeps the book of record in memory. One mutex serialises writes;
// reads share it.
type Store struct {
	writes core.Writes  // the write methods, over write
	src    links.Source // what package links reads, made once: reads use it
	limits annals.Limits
	now    func() time.Time
	wm     *core.Watermark

	mu      sync.RWMutex
	log     []annals.Event // position p at index p-1
	streams map[string]*stream
	ids     map[streamID]annals.Position // (stream, event id) -> position
	index   map[string][]annals.Position // index stream -> position of revision r at r
	last    time.Time                    // recorded time never goes backwards
	closed  bool
}

// streamID keys the idempotency index: ids are scoped to their stream.
type streamID struct {
	stream string
	id     uuid.UUID
}

type stream struct {
	state     core.StreamState
	positions []annals.Position // revision r at index r
}

var (
	_ annals.Store        = (*Store)(nil)
	_ annals.StreamLister = (*Store)(nil)
)

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		limits:  opts.Limits.WithDefaults(),
		now:     opts.Now,
		wm:      core.NewWatermark(0),
		streams: make(map[string]*stream),
		ids:     make(map[streamID]annals.Position),
		index:   make(map[string][]annals.Position),
	}
	s.writes = core.Writes{Write: s.write}
	s.src = s.links()
	return s
}

// Append implements annals.Store: it writes events to stream if the stream
// is at expected, all or none, under the store's mutex. An event whose id
// is already recorded in the stream makes the call an idempotent retry,
// answered with the original result.
func (s *Store) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	return s.writes.Append(ctx, stream, expected, events...)
}

// AppendMulti implements annals.Store: the records of m, to several
// streams, in one atomic write decided as Append's are (see
// annals.MultiAppend), with the same durability and errors.
func (s *Store) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	return s.writes.AppendMulti(ctx, m)
}

// Ready implements annals.ReadyChecker: an append of no events to
// annals.ReadinessStream, which the writer decides and writes nothing for.
func (s *Store) Ready(ctx context.Context) error {
	_, err := s.writes.Append(ctx, annals.ReadinessStream, annals.Any)
	return err
}

// SetStreamMetadata implements annals.Store: it appends md to stream's
// metastream if the metastream is at expected.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected annals.ExpectedRevision, md annals.StreamMetadata) (annals.AppendResult, error) {
	return s.writes.SetStreamMetadata(ctx, stream, expected, md)
}

// Delete implements annals.Store: a soft delete, which hides the stream's
// events; a later append continues its revisions.
func (s *Store) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	return s.writes.Delete(ctx, stream, expected)
}

// Tombstone implements annals.Store: a hard delete, for good; the stream
// can never be written again.
func (s *Store) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	return s.writes.Tombstone(ctx, stream, expected)
}

// source is what core's subscription loops read.
func (s *Store) source() core.Source {
	return core.Source{ReadStream: s.ReadStream, ReadAll: s.ReadAll, DurableState: s.durableState, Indexed: links.Indexed}
}

// Close implements annals.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.wm.Close()
	return nil
}

func (s *Store) write(ctx context.Context, op *core.Op) (annals.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return annals.AppendResult{}, err
	}
	if err := core.Validate(s.limits, op); err != nil {
		return annals.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return annals.AppendResult{}, annals.ErrClosed
	}
	now := s.now().UTC()
	if now.Before(s.last) {
		now = s.last
	}
	p := core.PlanOp(view{s}, op, annals.Position(len(s.log))+1, now)
	if p.Err != nil || p.Duplicate || len(p.Events) == 0 {
		return p.Result, p.Err
	}
	s.last = now
	for _, e := range p.Events {
		// The caller may reuse its buffers once Append returns.
		e.Data, e.Metadata, e.Tags = bytes.Clone(e.Data), bytes.Clone(e.Metadata), slices.Clone(e.Tags)
		s.log = append(s.log, e)
		s.ids[streamID{e.Stream, e.ID}] = e.Position
		s.indexLocked(&e)
		if e.Revision == annals.RevisionTombstone {
			continue
		}
		st := s.stream(e.Stream)
		if annals.Revision(len(st.positions)) != e.Revision {
			panic("memory: stream revisions must be dense")
		}
		st.positions = append(st.positions, e.Position)
	}
	for _, u := range p.Updates {
		s.stream(u.Stream).state = u.State
	}
	s.wm.Advance(annals.Position(len(s.log)))
	return p.Result, nil
}

func (s *Store) stream(name string) *stream {
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	return st
}

// view reads the store for the planner; the caller holds s.mu.
type view struct{ s *Store }

func (v view) State(name string) (core.StreamState, error) {
	if st := v.s.streams[name]; st != nil {
		return st.state, nil
	}
	return core.StreamState{}, nil
}

func (v view) Metadata(name string) (annals.StreamMetadata, error) {
	return v.s.metadataLocked(name)
}

func (v view) Lookup(stream string, id uuid.UUID) (core.Recorded, error) {
	pos, ok := v.s.ids[streamID{stream, id}]
	if !ok {
		return core.Recorded{}, nil
	}
	e := &v.s.log[pos-1]
	return core.Recorded{Found: true, Stream: e.Stream, Revision: e.Revision, Position: e.Position}, nil
}

func (v view) FirstMatch(q annals.Query, after annals.Position) (annals.Position, error) {
	for i := int(min(after, annals.Position(len(v.s.log)))); i < len(v.s.log); i++ {
		if e := &v.s.log[i]; q.Matches(e.Type, e.Tags) {
			return e.Position, nil
		}
	}
	return 0, nil
}

func (s *Store) metadataLocked(name string) (annals.StreamMetadata, error) {
	ms := s.streams[annals.MetastreamOf(name)]
	if ms == nil || len(ms.positions) == 0 {
		return annals.StreamMetadata{}, nil
	}
	e := &s.log[ms.positions[len(ms.positions)-1]-1]
	return annals.ParseStreamMetadata(e.Data)
}

// StreamMetadata implements annals.Store.
func (s *Store) StreamMetadata(ctx context.Context, name string) (annals.StreamMetadata, annals.ExpectedRevision, error) {
	if err := s.limits.CheckStreamName(name); err != nil {
		return annals.StreamMetadata{}, annals.NoStream, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return annals.StreamMetadata{}, annals.NoStream, annals.ErrClosed
	}
	ms := s.streams[annals.MetastreamOf(name)]
	if ms == nil {
		return annals.StreamMetadata{}, annals.NoStream, nil
	}
	md, err := s.metadataLocked(name)
	return md, ms.state.Actual(), err
}

// durableState returns a stream's state (every write here is "durable").
func (s *Store) durableState(ctx context.Context, name string) (core.StreamState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return core.StreamState{}, annals.ErrClosed
	}
	if annals.IsIndexStream(name) {
		return s.indexStateLocked(name), nil
	}
	st, _ := view{s}.State(name)
	return st, nil
}

// ReadStream implements annals.Store: index streams from the store's
// indexes (see package links), links resolved if opts asks.
func (s *Store) ReadStream(ctx context.Context, name string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	if err := s.limits.CheckStreamName(name); err != nil {
		return func(yield func(annals.Event, error) bool) { yield(annals.Event{}, err) }
	}
	return links.ReadStream(ctx, s.src, name, opts)
}

// readStream reads an ordinary stream. It reads in pages so that a slow
// consumer never holds the lock.
func (s *Store) readStream(ctx context.Context, name string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := s.limits.CheckStreamName(name); err != nil {
			yield(annals.Event{}, err)
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(annals.Event{}, annals.ErrClosed)
			return
		}
		st, _ := view{s}.State(name)
		md, err := s.metadataLocked(name)
		var positions []annals.Position
		if ss := s.streams[name]; ss != nil {
			positions = ss.positions // append-only: this prefix never changes
		}
		s.mu.RUnlock()
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		r, err := core.PlanStreamRead(name, st, md, opts, s.now())
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		if r.Empty {
			return
		}
		var yielded uint64
		next, step := r.Lo, annals.Revision(1)
		if r.Direction == annals.Backwards {
			next, step = r.Hi, ^annals.Revision(0) // -1
		}
		for n := r.Hi - r.Lo + 1; n > 0; n-- {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			e, err := s.at(positions[next])
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			keep, more := r.Take(&e, yielded)
			if keep {
				yielded++
				if !yield(e, nil) {
					return
				}
			}
			if !more {
				return
			}
			next += step
		}
	}
}

func (s *Store) at(pos annals.Position) (annals.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return annals.Event{}, annals.ErrClosed
	}
	// Each read gets its own copy of the payloads, as from a durable store:
	// a reader that modifies them changes nothing stored.
	e := s.log[pos-1]
	e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
	return e, nil
}

// ReadQuery implements annals.Store: a scan of the log.
func (s *Store) ReadQuery(ctx context.Context, q annals.Query, opts annals.ReadQueryOptions) iter.Seq2[annals.Event, error] {
	return core.ScanQuery(ctx, s.ReadAll, q, opts)
}

// ReadAll implements annals.Store: a category filter from the category
// index, links resolved if opts asks.
func (s *Store) ReadAll(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	return links.ReadAll(ctx, s.src, opts)
}

// readAll reads the log, filtered by a scan.
func (s *Store) readAll(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		s.mu.RLock()
		closed := s.closed
		s.mu.RUnlock()
		if closed {
			// Even when there is nothing to read: a closed store must not
			// look like an idle one.
			yield(annals.Event{}, annals.ErrClosed)
			return
		}
		lo, hi, ok := core.AllRead(opts, s.wm.Load())
		if !ok {
			return
		}
		var yielded uint64
		pos, step := lo, annals.Position(1)
		if opts.Direction == annals.Backwards {
			pos, step = hi, ^annals.Position(0)
		}
		for n := hi - lo + 1; n > 0; n-- {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			e, err := s.at(pos)
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			pos += step
			if !opts.Filter.Match(&e) {
				continue
			}
			if !yield(e, nil) {
				return
			}
			yielded++
			if opts.Limit > 0 && yielded >= opts.Limit {
				return
			}
		}
	}
}

// SubscribeToStream implements annals.Store.
func (s *Store) SubscribeToStream(ctx context.Context, name string, opts annals.SubscribeStreamOptions) iter.Seq2[annals.Message, error] {
	if err := s.limits.CheckStreamName(name); err != nil {
		return func(yield func(annals.Message, error) bool) { yield(annals.Message{}, err) }
	}
	return core.SubscribeStream(ctx, s.source(), s.wm, name, opts, annals.DefaultReadBatchEvents)
}

// SubscribeToAll implements annals.Store.
func (s *Store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	return core.SubscribeAll(ctx, s.source(), s.wm, opts, annals.DefaultReadBatchEvents)
}

// ListStreams implements annals.StreamLister. It walks every stream the
// store holds (the store keeps no sorted index): a reference, not a store
// for millions of streams.
func (s *Store) ListStreams(ctx context.Context, opts annals.ListStreamsOptions) ([]annals.StreamInfo, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, annals.ErrClosed
	}
	var out []annals.StreamInfo
	for name, st := range s.streams {
		if _, meta := annals.IsMetastream(name); meta || !strings.HasPrefix(name, opts.Prefix) || name <= opts.After {
			continue
		}
		if st.state.Exists || st.state.Tombstoned {
			out = append(out, streamInfo(name, st.state))
		}
	}
	slices.SortFunc(out, func(a, b annals.StreamInfo) int { return strings.Compare(a.Name, b.Name) })
	if n := opts.PageSize(); len(out) > n {
		return slices.Clone(out[:n]), nil // not the whole match's array
	}
	return out, nil
}

func streamInfo(name string, st core.StreamState) annals.StreamInfo {
	return annals.StreamInfo{
		Name: name, LastRevision: st.LastRevision, LastPosition: st.LastPosition,
		Deleted: st.SoftDeleted, Tombstoned: st.Tombstoned,
	}
}
