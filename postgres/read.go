package postgres

import (
	"context"
	"errors"
	"iter"
	"math"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// The read path. Every read is a plain statement on committed data (READ
// COMMITTED: each statement sees every transaction committed before it
// began). Positions become visible in order (writer.go, invariant 2), so a
// forward read of $all from any position sees a gapless prefix of what
// follows it: no watermark is needed to bound it. A page is read whole and
// its connection released before the caller sees an event, so a slow
// consumer holds no connection and at most one page of memory.

// querier is what both the pool and one connection (the writer's, inside
// its transaction) offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// streamRow is a row of the streams table.
type streamRow struct {
	hasEvents, softDeleted, tombstoned bool
	lastRevision, lastPosition         int64
}

func (r streamRow) state() core.StreamState {
	return core.StreamState{
		Exists: r.hasEvents, LastRevision: annals.Revision(r.lastRevision), LastPosition: annals.Position(r.lastPosition),
		SoftDeleted: r.softDeleted, Tombstoned: r.tombstoned,
	}
}

func readState(ctx context.Context, q querier, qs *queries, stream string) (core.StreamState, error) {
	var r streamRow
	err := q.QueryRow(ctx, qs.streamState, stream).Scan(&r.hasEvents, &r.lastRevision, &r.lastPosition, &r.softDeleted, &r.tombstoned)
	if errors.Is(err, pgx.ErrNoRows) {
		return core.StreamState{}, nil
	}
	return r.state(), err
}

// durableState returns the committed state of stream.
func (s *Store) durableState(ctx context.Context, stream string) (core.StreamState, error) {
	var st core.StreamState
	err := s.use(ctx, func() (err error) {
		st, err = readState(ctx, s.pool, &s.q, stream)
		return err
	})
	return st, err
}

// pageQuery is a read of events: the SQL and its arguments.
type pageQuery struct {
	sql  string
	args []any
}

// stateAndMetadata reads a stream's state, its metadata and its
// metastream's state in one statement (one snapshot). With first, it also
// runs that read of events in the same round trip (a later statement, so a
// later snapshot: the caller keeps only revisions the state shows) and
// returns its rows.
func (s *Store) stateAndMetadata(ctx context.Context, stream string, first *pageQuery) (st, ms core.StreamState, md annals.StreamMetadata, page []annals.Event, more bool, err error) {
	err = s.use(ctx, func() (err error) {
		var (
			sHas, sSoft, sTomb *bool
			sRev, sPos         *int64
			mHas               *bool
			mRev, mPos         *int64
			data               []byte
		)
		b := &pgx.Batch{}
		b.Queue(s.q.streamAndMetadata, stream, annals.MetastreamOf(stream))
		if first != nil {
			b.Queue(first.sql, first.args...)
		}
		br := s.pool.SendBatch(ctx, b)
		defer func() {
			if cerr := br.Close(); err == nil {
				err = cerr
			}
		}()
		if err := br.QueryRow().Scan(&sHas, &sRev, &sPos, &sSoft, &sTomb, &mHas, &mRev, &mPos, &data); err != nil {
			return err
		}
		st, ms, md = core.StreamState{}, core.StreamState{}, annals.StreamMetadata{}
		if sHas != nil {
			st = streamRow{hasEvents: *sHas, lastRevision: *sRev, lastPosition: *sPos, softDeleted: *sSoft, tombstoned: *sTomb}.state()
		}
		if mHas != nil {
			ms = streamRow{hasEvents: *mHas, lastRevision: *mRev, lastPosition: *mPos}.state()
		}
		if ms.Exists {
			if md, err = annals.ParseStreamMetadata(data); err != nil {
				return err
			}
		}
		if first != nil {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			page, more, err = scanEvents(rows, s.opts.ReadPageBytes)
			return err
		}
		return nil
	})
	return st, ms, md, page, more, err
}

// StreamMetadata implements annals.Store.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (annals.StreamMetadata, annals.ExpectedRevision, error) {
	if err := s.opts.Limits.CheckStreamName(stream); err != nil {
		return annals.StreamMetadata{}, annals.NoStream, err
	}
	_, ms, md, _, _, err := s.stateAndMetadata(ctx, stream, nil)
	if err != nil {
		return annals.StreamMetadata{}, annals.NoStream, err
	}
	return md, ms.Actual(), nil
}

// ReadStream implements annals.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := s.opts.Limits.CheckStreamName(stream); err != nil {
			yield(annals.Event{}, err)
			return
		}
		// The first page is read with the state, in one round trip, from
		// where the caller asked; the plan then says which of it to keep.
		query := s.q.readStreamForwards
		lo, hi := opts.From, annals.Revision(math.MaxInt64)
		if opts.Direction == annals.Backwards {
			query = s.q.readStreamBackwards
			lo, hi = 0, opts.From
		}
		first := &pageQuery{query, []any{stream, clamp(lo), clamp(hi), annals.DefaultReadBatchEvents}}
		st, _, md, page, more, err := s.stateAndMetadata(ctx, stream, first)
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		r, err := core.PlanStreamRead(stream, st, md, opts, s.opts.Now())
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		if r.Empty {
			return
		}
		lo, hi = r.Lo, r.Hi // revisions still to read
		var yielded uint64
		for {
			for i := range page {
				e := &page[i]
				if e.Revision < r.Lo || e.Revision > r.Hi {
					// Outside the plan: before the window, or appended
					// after the state was read.
					continue
				}
				keep, goOn := r.Take(e, yielded)
				if keep {
					yielded++
					if !yield(*e, nil) {
						return
					}
				}
				if !goOn {
					return
				}
			}
			if !more {
				return
			}
			last := page[len(page)-1].Revision
			if r.Direction == annals.Forwards {
				lo = max(lo, annals.After(last))
			} else if last == 0 {
				return
			} else {
				hi = min(hi, last-1)
			}
			if lo > hi {
				return
			}
			err := s.use(ctx, func() (err error) {
				page, more, err = s.queryEvents(ctx, query, stream, clamp(lo), clamp(hi), annals.DefaultReadBatchEvents)
				return err
			})
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
		}
	}
}

// ReadAll implements annals.Store.
func (s *Store) ReadAll(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		if err := s.use(ctx, func() error { return nil }); err != nil {
			// Even when there is nothing to read: a closed store must not
			// look like an idle one.
			yield(annals.Event{}, err)
			return
		}
		// Positions are visible in order, so the end of the log is wherever
		// the database says it is; no bound of our own.
		lo, hi, ok := core.AllRead(opts, math.MaxInt64)
		if !ok {
			return
		}
		backwards := opts.Direction == annals.Backwards
		var yielded uint64
		for {
			var page []annals.Event
			var more bool
			err := s.use(ctx, func() (err error) {
				if backwards {
					page, more, err = s.queryEvents(ctx, s.q.readAllBackwards, clamp(hi), annals.DefaultReadBatchEvents)
				} else {
					page, more, err = s.queryEvents(ctx, s.q.readAllForwards, clamp(lo), annals.DefaultReadBatchEvents)
				}
				return err
			})
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			for i := range page {
				e := &page[i]
				if !opts.Filter.Match(e) {
					continue
				}
				if !yield(*e, nil) {
					return
				}
				yielded++
				if opts.Limit > 0 && yielded >= opts.Limit {
					return
				}
			}
			if !more {
				return
			}
			last := page[len(page)-1].Position
			if backwards {
				if last <= 1 {
					return
				}
				hi = last - 1
			} else {
				lo = annals.After(last)
			}
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
		}
	}
}

// queryEvents runs a read whose last argument is the page size and returns
// its rows.
func (s *Store) queryEvents(ctx context.Context, query string, args ...any) ([]annals.Event, bool, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, err
	}
	return scanEvents(rows, s.opts.ReadPageBytes)
}

// scanEvents reads rows of eventColumns and closes them. It stops early
// once the page holds ReadPageBytes of payload; more reports that the
// page ended on a bound (count or bytes), so there may be more to read.
func scanEvents(rows pgx.Rows, pageBytesMax int) (page []annals.Event, more bool, err error) {
	defer rows.Close()
	page = make([]annals.Event, 0, annals.DefaultReadBatchEvents)
	pageBytes := 0
	for rows.Next() {
		var (
			e        annals.Event
			pos, rev int64
			id       pgtype.UUID
		)
		if err := rows.Scan(&pos, &id, &e.Stream, &rev, &e.Type, &e.ContentType, &e.Data, &e.Metadata, &e.Recorded, &e.Tags); err != nil {
			return nil, false, err
		}
		e.Position, e.Revision, e.ID = annals.Position(pos), annals.Revision(rev), uuid.UUID(id.Bytes)
		e.Recorded = e.Recorded.UTC()
		page = append(page, e)
		if pageBytes += len(e.Data) + len(e.Metadata); pageBytes >= pageBytesMax {
			return page, true, rows.Err()
		}
	}
	return page, len(page) >= annals.DefaultReadBatchEvents, rows.Err()
}

// clamp maps a position or revision onto bigint: End and other values past
// the largest bigint mean "the end".
func clamp[T annals.Revision | annals.Position](v T) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// SubscribeToStream implements annals.Store.
func (s *Store) SubscribeToStream(ctx context.Context, stream string, opts annals.SubscribeStreamOptions) iter.Seq2[annals.Message, error] {
	if err := s.opts.Limits.CheckStreamName(stream); err != nil {
		return func(yield func(annals.Message, error) bool) { yield(annals.Message{}, err) }
	}
	return core.SubscribeStream(ctx, s.source(), s.wm, stream, opts, annals.DefaultReadBatchEvents)
}

// SubscribeToAll implements annals.Store.
func (s *Store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	if opts.From != annals.End {
		return core.SubscribeAll(ctx, s.source(), s.wm, opts, annals.DefaultReadBatchEvents)
	}
	return func(yield func(annals.Message, error) bool) {
		// End is the end of the log in the database, not as far as this
		// Store has heard: other Stores' commits count too. (If the read
		// fails, the poll loop catches up later; End is then this Store's.)
		s.useOnce(func() error { s.poll(ctx, nil); return nil })
		for m, err := range core.SubscribeAll(ctx, s.source(), s.wm, opts, annals.DefaultReadBatchEvents) {
			if !yield(m, err) {
				return
			}
		}
	}
}

// source is what core's subscription loops read.
func (s *Store) source() core.Source {
	return core.Source{ReadStream: s.ReadStream, ReadAll: s.ReadAll, DurableState: s.durableState}
}
