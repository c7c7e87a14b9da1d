package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"iter"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/annals/annals/internal/links"
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

// getHead derives a stream's state from its head record and the last entry
// of its index.
func getHead(db *pebble.DB, stream string) (core.StreamState, error) {
	var st core.StreamState
	v, ok, err := getValue(db, headKey(stream))
	if err != nil || !ok {
		// Every stream ever written or deleted has a head record: a miss,
		// answered by the bloom filters, means a new stream.
		return st, err
	}
	if st, err = decodeHead(v); err != nil {
		return st, err
	}
	prefix := streamPrefix(stream)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upperStreamKey(prefix, annals.End)})
	if err != nil {
		return st, err
	}
	defer it.Close()
	if it.Last() {
		if st, err = withIndexTail(st, len(prefix), it.Key(), it.Value()); err != nil {
			return st, err
		}
	}
	return st, it.Error()
}

// withIndexTail completes a head record with the last entry of its
// stream's index (key k, value v; the stream's prefix is prefixLen bytes):
// a plain append writes no head.
func withIndexTail(st core.StreamState, prefixLen int, k, v []byte) (core.StreamState, error) {
	rev, err := decodeRevision(k[prefixLen:])
	if err != nil {
		return st, err
	}
	pos, _, err := decodeLocation(v)
	if err != nil {
		return st, err
	}
	st.Exists, st.LastRevision, st.LastPosition = true, rev, max(st.LastPosition, pos)
	return st, nil
}

// getEvent reads the event at pos from the chunk whose key is chunkKey.
func getEvent(db *pebble.DB, pos, chunkKey annals.Position) (annals.Event, error) {
	cc := chunkCache{db: db}
	return cc.event(pos, chunkKey)
}

// findEvent reads the event at pos, seeking its chunk.
func findEvent(db *pebble.DB, pos annals.Position) (annals.Event, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableEvent}, UpperBound: eventKey(pos + 1)})
	if err != nil {
		return annals.Event{}, err
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return annals.Event{}, err
		}
		return annals.Event{}, errCorrupt("missing chunk")
	}
	first, err := decodePosition(it.Key()[1:])
	if err != nil {
		return annals.Event{}, err
	}
	c, err := parseChunk(first, append([]byte(nil), it.Value()...))
	if err != nil {
		return annals.Event{}, err
	}
	if !c.contains(pos) {
		return annals.Event{}, errCorrupt("missing event")
	}
	return c.event(pos)
}

// durableState returns the state of stream as of a durable position.
func (s *Store) durableState(ctx context.Context, stream string) (core.StreamState, error) {
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
	ms, err := s.durableState(ctx, annals.MetastreamOf(stream))
	if err != nil || !ms.Exists {
		return annals.StreamMetadata{}, ms, err
	}
	var e annals.Event
	if err := s.read(func() (err error) { e, err = findEvent(s.db, ms.LastPosition); return err }); err != nil {
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

// ReadStream implements annals.Store: index streams from the indexes
// (indexes.go), links resolved if opts asks.
func (s *Store) ReadStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	if err := s.opts.Limits.CheckStreamName(stream); err != nil {
		return func(yield func(annals.Event, error) bool) { yield(annals.Event{}, err) }
	}
	return links.ReadStream(ctx, s.src, stream, opts)
}

// readStream reads an ordinary stream.
func (s *Store) readStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := s.opts.Limits.CheckStreamName(stream); err != nil {
			yield(annals.Event{}, err)
			return
		}
		st, err := s.durableState(ctx, stream)
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
		var chunks chunkCache
		lo, hi := r.Lo, r.Hi // revisions still to scan
		var yielded uint64
		for {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			var page []annals.Event
			chunks.loadedBytes = 0
			done := true // the range or the window is exhausted
			err := s.read(func() error {
				chunks.db = s.db // reopened since the last page, if it was read-only (space.go)
				bounds := &pebble.IterOptions{LowerBound: streamKey(stream, lo), UpperBound: upperStreamKey(prefix, hi)}
				return s.scan(bounds, r.Direction == annals.Backwards, func(k, v []byte) (bool, error) {
					pos, chunkKey, err := decodeLocation(v)
					if err != nil {
						return false, err
					}
					e, err := chunks.event(pos, chunkKey)
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
						lo = annals.After(e.Revision)
					} else if e.Revision == 0 {
						return false, nil
					} else {
						hi = e.Revision - 1
					}
					if len(page) < annals.DefaultReadBatchEvents && chunks.loadedBytes < s.opts.ReadPageBytes {
						return true, nil
					}
					done = false
					return false, nil
				})
			})
			n, ok := emit(page, err, yield)
			if yielded += uint64(n); !ok || done || lo > hi {
				return
			}
		}
	}
}

// chunkCache keeps the last chunk a stream read loaded: a stream's events
// often sit together in the log.
type chunkCache struct {
	db *pebble.DB
	c  chunk
	ok bool
	// loadedBytes counts the chunk bytes copied out of the engine: a page
	// of a stream read keeps them alive, so it bounds the page.
	loadedBytes int
}

func (cc *chunkCache) event(pos, chunkKey annals.Position) (annals.Event, error) {
	if !cc.ok || cc.c.first != chunkKey {
		v, ok, err := getValue(cc.db, eventKey(chunkKey))
		if err != nil {
			return annals.Event{}, err
		}
		if !ok {
			return annals.Event{}, errCorrupt("missing chunk")
		}
		cc.loadedBytes += len(v)
		if cc.c, err = parseChunk(chunkKey, v); err != nil {
			cc.ok = false
			return annals.Event{}, err
		}
		cc.ok = true
	}
	if !cc.c.contains(pos) {
		return annals.Event{}, errCorrupt("index points outside its chunk")
	}
	return cc.c.event(pos)
}

func upperStreamKey(prefix []byte, hi annals.Revision) []byte {
	if hi == annals.End {
		return append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
	}
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(hi+1))
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
		if err := s.read(func() error { return nil }); err != nil {
			yield(annals.Event{}, err)
			return
		}
		lo, hi, ok := core.AllRead(opts, s.wm.Load())
		if !ok {
			return
		}
		reverse := opts.Direction == annals.Backwards
		var arena copyArena
		var yielded uint64
		page := make([]annals.Event, 0, annals.DefaultReadBatchEvents)
		for {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			page = page[:0]
			pageBytes, scanned := 0, 0
			full := false // the page ended before the range did
			err := s.read(func() error {
				from := lo
				if reverse {
					from = hi
				}
				it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableEvent}, UpperBound: eventKey(hi + 1)})
				if err != nil {
					return err
				}
				defer it.Close()
				valid := seekChunk(it, from, reverse)
				for ; valid && lo <= hi && !full; valid = stepChunk(it, reverse) {
					first, err := decodePosition(it.Key()[1:])
					if err != nil {
						return err
					}
					v := it.Value()
					c, err := parseChunk(first, v)
					if err != nil {
						return err
					}
					owned := false
					for lo <= hi {
						pos := lo
						if reverse {
							pos = hi
						}
						if !c.contains(pos) {
							break
						}
						if reverse {
							hi = pos - 1
						} else {
							lo = pos + 1
						}
						rec, err := c.record(pos)
						if err != nil {
							return err
						}
						if opts.Filter != nil && !matchRecord(opts.Filter, rec) {
							scanned++
							continue
						}
						if opts.Filter != nil {
							// Sparse matches: copy just the record.
							rec = arena.copy(rec)
						} else if !owned {
							// Copy the chunk once; its events share the copy.
							if c, err = parseChunk(first, arena.copy(v)); err != nil {
								return err
							}
							if rec, err = c.record(pos); err != nil {
								return err
							}
							owned = true
						}
						e, err := decodeEvent(pos, rec)
						if err != nil {
							return err
						}
						page = append(page, e)
						pageBytes += len(rec)
						if opts.Limit > 0 && yielded+uint64(len(page)) >= opts.Limit {
							full = true
							break
						}
					}
					// Pages end on chunk boundaries, so the next page's seek
					// lands on a chunk's own key.
					if len(page) >= annals.DefaultReadBatchEvents || pageBytes >= s.opts.ReadPageBytes || scanned >= maxScanPerPage {
						full = true
					}
				}
				return it.Error()
			})
			n, ok := emit(page, err, yield)
			if yielded += uint64(n); !ok || opts.Limit > 0 && yielded >= opts.Limit || !full || lo > hi {
				return
			}
		}
	}
}

// emit yields a page read under the engine lock, or the error that ended
// it. It returns how many events it yielded and whether to go on.
func emit(page []annals.Event, err error, yield func(annals.Event, error) bool) (int, bool) {
	if err != nil {
		yield(annals.Event{}, err)
		return 0, false
	}
	for i, e := range page {
		if !yield(e, nil) {
			return i + 1, false
		}
	}
	return len(page), true
}

// seekChunk positions it on the chunk holding pos.
func seekChunk(it *pebble.Iterator, pos annals.Position, reverse bool) bool {
	if !reverse && it.SeekGE(eventKey(pos)) {
		if first, err := decodePosition(it.Key()[1:]); err == nil && first == pos {
			return true
		}
	}
	return it.SeekLT(eventKey(pos + 1))
}

func stepChunk(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// copyArena copies records out of the engine (whose buffers are only valid
// until the iterator moves) into shared chunks: one allocation serves many
// events. A chunk is never written where it was already handed out, so an
// event stays valid as long as the caller keeps it.
type copyArena struct{ buf []byte }

const copyArenaChunkBytes = 64 << 10

func (a *copyArena) copy(v []byte) []byte {
	if len(v) >= copyArenaChunkBytes/8 {
		// Big values (whole chunks) get their own copy, which append
		// does not zero first.
		return append([]byte(nil), v...)
	}
	if len(a.buf)+len(v) > cap(a.buf) {
		a.buf = make([]byte, 0, max(copyArenaChunkBytes, len(v)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, v...)
	return a.buf[start:len(a.buf):len(a.buf)]
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
	return core.SubscribeStream(ctx, s.source(), s.wm, stream, opts, annals.DefaultReadBatchEvents)
}

// SubscribeToAll implements annals.Store.
func (s *Store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	return core.SubscribeAll(ctx, s.source(), s.wm, opts, annals.DefaultReadBatchEvents)
}

// source is what core's subscription loops read.
func (s *Store) source() core.Source {
	return core.Source{ReadStream: s.ReadStream, ReadAll: s.ReadAll, DurableState: s.state, Indexed: links.Indexed}
}
