package embedded

import (
	"context"
	"errors"
	"iter"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/cockroachdb/pebble/v2"
)

// The read path. Pebble shows a batch before its WAL fsync, so every read
// stops at the durable watermark: $all reads scan only up to it, and stream
// reads wait (one fsync at most) until the head they read is durable.

func getValue(db *pebble.DB, key []byte) ([]byte, bool, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// getHead derives a stream's state: the last entry of its index, and its
// head record, if any.
func getHead(db *pebble.DB, stream string) (core.StreamState, error) {
	var st core.StreamState
	v, ok, err := getValue(db, headKey(stream))
	if err != nil {
		return st, err
	}
	if ok {
		if st, err = decodeHead(v); err != nil {
			return st, err
		}
	}
	prefix := streamPrefix(stream)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upperStreamKey(prefix, ^uint64(0))})
	if err != nil {
		return st, err
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		rev, err := decodePosition(k[len(prefix):])
		if err != nil {
			return st, err
		}
		pos, err := decodePosition(it.Value())
		if err != nil {
			return st, err
		}
		st.Exists, st.LastRevision, st.LastPosition = true, rev, max(st.LastPosition, pos)
	}
	return st, it.Error()
}

func getPosition(db *pebble.DB, key []byte) (uint64, bool, error) {
	v, ok, err := getValue(db, key)
	if err != nil || !ok {
		return 0, false, err
	}
	pos, err := decodePosition(v)
	return pos, err == nil, err
}

func getEvent(db *pebble.DB, pos uint64) (annals.Event, error) {
	v, ok, err := getValue(db, eventKey(pos))
	if err != nil {
		return annals.Event{}, err
	}
	if !ok {
		return annals.Event{}, errCorrupt("missing event record")
	}
	return decodeEvent(pos, v)
}

// DurableState returns the state of stream as of a durable position.
func (s *Store) DurableState(ctx context.Context, stream string) (core.StreamState, error) {
	var st core.StreamState
	err := s.read(func() (err error) {
		st, err = getHead(s.db, stream)
		return err
	})
	if err != nil {
		return st, err
	}
	if st.LastPosition > s.wm.Load() {
		// Applied, not yet synced: it will be durable within one fsync, or
		// the process crashes.
		if _, err := s.wm.Wait(ctx, st.LastPosition-1); err != nil {
			return core.StreamState{}, err
		}
	}
	return st, nil
}

func (s *Store) durableMetadata(ctx context.Context, stream string) (annals.StreamMetadata, core.StreamState, error) {
	ms, err := s.DurableState(ctx, annals.MetastreamOf(stream))
	if err != nil || !ms.Exists {
		return annals.StreamMetadata{}, ms, err
	}
	var e annals.Event
	if err := s.read(func() (err error) { e, err = getEvent(s.db, ms.LastPosition); return err }); err != nil {
		return annals.StreamMetadata{}, ms, err
	}
	md, err := annals.ParseStreamMetadata(e.Data)
	return md, ms, err
}

// StreamMetadata implements annals.Store.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (annals.StreamMetadata, annals.ExpectedRevision, error) {
	if err := s.opts.Limits.CheckStreamName(stream); err != nil {
		return annals.StreamMetadata{}, annals.NoStream, err
	}
	md, ms, err := s.durableMetadata(ctx, stream)
	return md, ms.Actual(), err
}

// ReadStream implements annals.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := s.opts.Limits.CheckStreamName(stream); err != nil {
			yield(annals.Event{}, err)
			return
		}
		st, err := s.DurableState(ctx, stream)
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		md, _, err := s.durableMetadata(ctx, stream)
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
		prefix := streamPrefix(stream)
		lo, hi := r.Lo, r.Hi // revisions still to scan
		var yielded uint64
		for {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			var page []annals.Event
			done := true // the range or the window is exhausted
			err := s.read(func() error {
				bounds := &pebble.IterOptions{LowerBound: streamKey(stream, lo), UpperBound: upperStreamKey(prefix, hi)}
				return s.scan(bounds, r.Direction == annals.Backwards, func(k, v []byte) (bool, error) {
					pos, err := decodePosition(v)
					if err != nil {
						return false, err
					}
					e, err := getEvent(s.db, pos)
					if err != nil {
						return false, err
					}
					keep, goOn := r.Take(&e, yielded+uint64(len(page)))
					if keep {
						page = append(page, e)
					}
					if !goOn {
						return false, nil
					}
					if r.Direction == annals.Forwards {
						lo = e.Revision + 1
					} else if e.Revision == 0 {
						return false, nil
					} else {
						hi = e.Revision - 1
					}
					if len(page) < annals.DefaultReadBatchEvents {
						return true, nil
					}
					done = false
					return false, nil
				})
			})
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				yielded++
			}
			if done || lo > hi {
				return
			}
		}
	}
}

func upperStreamKey(prefix []byte, hi uint64) []byte {
	if hi == ^uint64(0) {
		return append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
	}
	k := append([]byte(nil), prefix...)
	return append(k, encodePosition(hi+1)...)
}

// scan iterates bounds in key order (or reverse) and calls fn with each key
// and value until fn says stop. The iterator is closed before scan returns:
// no read holds engine resources while its caller is busy.
func (s *Store) scan(bounds *pebble.IterOptions, reverse bool, fn func(k, v []byte) (bool, error)) error {
	it, err := s.db.NewIter(bounds)
	if err != nil {
		return err
	}
	valid := it.First()
	step := it.Next
	if reverse {
		valid, step = it.Last(), it.Prev
	}
	for ; valid; valid = step() {
		more, err := fn(it.Key(), it.Value())
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// ReadAll implements annals.Store.
func (s *Store) ReadAll(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		if err := s.read(func() error { return nil }); err != nil {
			yield(annals.Event{}, err)
			return
		}
		lo, hi, ok := core.AllRead(opts, s.wm.Load())
		if !ok {
			return
		}
		reverse := opts.Direction == annals.Backwards
		var yielded uint64
		page := make([]annals.Event, 0, annals.DefaultReadBatchEvents)
		for {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			page = page[:0]
			pageBytes, scanned := 0, 0
			done := true // the range is exhausted or the limit reached
			err := s.read(func() error {
				bounds := &pebble.IterOptions{LowerBound: eventKey(lo), UpperBound: eventKey(hi + 1)}
				return s.scan(bounds, reverse, func(k, v []byte) (bool, error) {
					pos, err := decodePosition(k[1:])
					if err != nil {
						return false, err
					}
					if reverse {
						hi = pos - 1
					} else {
						lo = pos + 1
					}
					if opts.Filter != nil && !matchRecord(opts.Filter, v) {
						if scanned++; scanned < maxScanPerPage {
							return lo <= hi, nil
						}
						done = lo > hi // come back for the rest after checking ctx
						return false, nil
					}
					e, err := decodeEvent(pos, append([]byte(nil), v...))
					if err != nil {
						return false, err
					}
					page = append(page, e)
					pageBytes += len(v)
					if opts.Limit > 0 && yielded+uint64(len(page)) >= opts.Limit {
						return false, nil
					}
					if len(page) < annals.DefaultReadBatchEvents && pageBytes < s.opts.ReadPageBytes {
						return lo <= hi, nil
					}
					done = lo > hi
					return false, nil
				})
			})
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				yielded++
			}
			if done || lo > hi {
				return
			}
		}
	}
}

// maxScanPerPage bounds how many filtered-out events one page passes over,
// so a filter that matches nothing still checks its context regularly.
const maxScanPerPage = 1 << 16

// matchRecord applies a filter to an encoded event without copying it.
func matchRecord(f *annals.Filter, rec []byte) bool {
	e, err := decodeEvent(0, rec)
	if err != nil {
		return true // let the full decode report it
	}
	return f.Match(&e)
}

// SubscribeToStream implements annals.Store.
func (s *Store) SubscribeToStream(ctx context.Context, stream string, opts annals.SubscribeStreamOptions) iter.Seq2[annals.Message, error] {
	if err := s.opts.Limits.CheckStreamName(stream); err != nil {
		return func(yield func(annals.Message, error) bool) { yield(annals.Message{}, err) }
	}
	return core.SubscribeStream(ctx, s, s.wm, stream, opts, annals.DefaultReadBatchEvents)
}

// SubscribeToAll implements annals.Store.
func (s *Store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	return core.SubscribeAll(ctx, s, s.wm, opts, annals.DefaultReadBatchEvents)
}
