package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"iter"
	"log/slog"
	"slices"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/annals/annals/internal/links"
	"github.com/cockroachdb/pebble/v2"
)

// The index streams ($ce-, $et-, $streams, $category-; package links):
//
//	'X' index stream 0x00 revision(8) -> position(8) chunk(8)
//
// written in the group's batch with the events (no second fsync), in the
// order of $all, so the revisions of an index stream are dense and its
// positions increase. Entries past the durable position are skipped by
// reads, as the log's are.
const tableIndex = 'X'

// IndexHeadCacheEntries bounds the writer's cache of the next revision of
// each index stream; a miss costs one engine seek.
const IndexHeadCacheEntries = 16384

func indexPrefix(name string) []byte {
	b := append([]byte{tableIndex}, name...)
	return append(b, 0)
}

func indexKey(name string, rev annals.Revision) []byte {
	return binary.BigEndian.AppendUint64(indexPrefix(name), uint64(rev))
}

func indexBounds(name string) *pebble.IterOptions {
	p := indexPrefix(name)
	return &pebble.IterOptions{LowerBound: p, UpperBound: upperStreamKey(p, annals.End)}
}

// indexHeads is the writer's next revision of each index stream.
type indexHeads struct {
	db    func() *pebble.DB // the engine now: a full disk reopens it
	next  map[string]annals.Revision
	limit int // entries kept; 0: no limit
}

func (h *indexHeads) take(name string) (annals.Revision, error) {
	r, ok := h.next[name]
	if !ok {
		if h.limit > 0 && len(h.next) >= h.limit {
			clear(h.next)
		}
		it, err := h.db().NewIter(indexBounds(name))
		if err != nil {
			return 0, err
		}
		if it.Last() {
			r = annals.Revision(binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:])) + 1
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	h.next[name] = r + 1
	return r, nil
}

// writeIndexes writes the index entries of a group's events.
func (h *indexHeads) write(b *pebble.Batch, events []*annals.Event, chunkOf []annals.Position) error {
	type entry struct{ k, v []byte }
	var entries []entry
	var buf [links.MaxNames]string
	for i, e := range events {
		for _, name := range links.Names(buf[:0], e) {
			r, err := h.take(name)
			if err != nil {
				return err
			}
			entries = append(entries, entry{indexKey(name, r), appendLocation(nil, e.Position, chunkOf[i])})
		}
	}
	slices.SortFunc(entries, func(x, y entry) int { return bytes.Compare(x.k, y.k) })
	for _, en := range entries {
		mustSet(b, en.k, en.v)
	}
	return nil
}

// indexState is the durable state of an index stream: its last entry at
// or before the durable position.
func (s *Store) indexState(name string) (core.StreamState, error) {
	var st core.StreamState
	durable := s.wm.Load()
	err := s.read(func() error {
		it, err := s.db.NewIter(indexBounds(name))
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.Last(); valid; valid = it.Prev() {
			pos, _, err := decodeLocation(it.Value())
			if err != nil {
				return err
			}
			if pos <= durable {
				rev := annals.Revision(binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:]))
				st = core.StreamState{Exists: true, LastRevision: rev, LastPosition: pos}
				break
			}
		}
		return it.Error()
	})
	return st, err
}

func (s *Store) state(ctx context.Context, stream string) (core.StreamState, error) {
	if annals.IsIndexStream(stream) {
		return s.indexState(stream)
	}
	return s.durableState(ctx, stream)
}

// links is what package links reads of the store.
func (s *Store) links() links.Source {
	return links.Source{
		ReadStream: s.readStream,
		ReadAll:    s.readAll,
		State:      s.state,
		Metadata: func(ctx context.Context, name string) (annals.StreamMetadata, error) {
			md, _, err := s.durableMetadata(ctx, name)
			return md, err
		},
		Entries:   s.entries,
		Positions: s.positions,
		Now:       s.opts.Now,
	}
}

func (s *Store) entries(ctx context.Context, name string, lo, hi annals.Revision, dir annals.Direction) iter.Seq2[links.Entry, error] {
	return func(yield func(links.Entry, error) bool) {
		s.scanIndex(ctx, name, lo, hi, dir, func(annals.Position) bool { return true }, yield)
	}
}

// positions yields the entries of name from position from: the keys are
// in revision order, and so in position order too.
func (s *Store) positions(ctx context.Context, name string, from annals.Position, dir annals.Direction) iter.Seq2[links.Entry, error] {
	return func(yield func(links.Entry, error) bool) {
		keep := func(p annals.Position) bool { return p >= from }
		if dir == annals.Backwards {
			keep = func(p annals.Position) bool { return p <= from }
		}
		s.scanIndex(ctx, name, 0, annals.End, dir, keep, yield)
	}
}

// indexPageEntries is how many entries a read of an index takes from the
// engine at a time: no iterator is held while the consumer runs.
const indexPageEntries = 256

// scanIndex yields the durable entries lo..hi of name that keep accepts,
// in dir, reading each one's event.
func (s *Store) scanIndex(ctx context.Context, name string, lo, hi annals.Revision, dir annals.Direction, keep func(annals.Position) bool, yield func(links.Entry, error) bool) {
	durable := s.wm.Load()
	prefix := indexPrefix(name)
	for lo <= hi {
		page, done, err := s.indexPage(ctx, prefix, lo, hi, dir, durable, keep)
		if err != nil {
			yield(links.Entry{}, err)
			return
		}
		for _, en := range page {
			if !yield(en, nil) {
				return
			}
		}
		if done || len(page) == 0 {
			return
		}
		last := page[len(page)-1].Revision
		if dir == annals.Forwards {
			lo = last + 1
		} else if hi = last - 1; last == 0 {
			return
		}
	}
}

// indexPage reads one page of scanIndex; done when the scan is over.
func (s *Store) indexPage(ctx context.Context, prefix []byte, lo, hi annals.Revision, dir annals.Direction, durable annals.Position, keep func(annals.Position) bool) (page []links.Entry, done bool, err error) {
	cc := chunkCache{db: s.db}
	bounds := &pebble.IterOptions{LowerBound: binary.BigEndian.AppendUint64(slices.Clip(prefix), uint64(lo)), UpperBound: upperStreamKey(prefix, hi)}
	done = true
	err = s.read(func() error {
		return s.scan(bounds, dir == annals.Backwards, func(k, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			pos, chunk, err := decodeLocation(v)
			if err != nil {
				return false, err
			}
			if pos > durable {
				// Forwards, nothing after a not yet durable entry is;
				// backwards, earlier ones may be.
				return dir == annals.Backwards, nil
			}
			if !keep(pos) {
				return true, nil
			}
			if len(page) == indexPageEntries {
				done = false
				return false, nil
			}
			e, err := cc.event(pos, chunk)
			if err != nil {
				return false, err
			}
			page = append(page, links.Entry{Revision: annals.Revision(binary.BigEndian.Uint64(k[len(k)-8:])), Event: e})
			return true, nil
		})
	})
	return page, done, err
}

// migrateIndexes builds the index streams of a store written before them
// (format 2): one pass over the log.
func migrateIndexes(db *pebble.DB, logger *slog.Logger) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableEvent}, UpperBound: []byte{tableEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	// No cache limit: the batch being built is not visible to a seek.
	h := &indexHeads{db: func() *pebble.DB { return db }, next: map[string]annals.Revision{}, limit: 0}
	b := db.NewBatch()
	defer func() { b.Close() }()
	events := 0
	for valid := it.First(); valid; valid = it.Next() {
		first := annals.Position(binary.BigEndian.Uint64(it.Key()[1:]))
		c, err := parseChunk(first, it.Value())
		if err != nil {
			return err
		}
		var evs []*annals.Event
		var chunks []annals.Position
		for pos := c.first; pos <= c.last(); pos++ {
			e, err := c.event(pos)
			if err != nil {
				return err
			}
			evs, chunks = append(evs, &e), append(chunks, first)
		}
		// Heads come from the cache once seen, so the batch need not be
		// visible before it is committed.
		if err := h.write(b, evs, chunks); err != nil {
			return err
		}
		events += len(evs)
		if b.Len() >= migrateBatchKeys*32 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	mustSet(b, []byte{keyFormat}, []byte{formatVersion})
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	logger.Info("embedded: built the category and event-type indexes", "events", events)
	return nil
}
