package embedded

import (
	"context"
	"iter"
	"slices"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/cockroachdb/pebble/v2"
)

// Queries of dynamic consistency boundaries over the tag index ('G',
// codec.go). An item's candidates come from the index of its first tag,
// filtered by type from the entry; the event is then read and the whole
// query checked on it. A query with an item that names no tag cannot use
// the index: it scans the log (ReadAll), as the memory store does.

// candidate is an index entry that may match.
type candidate struct{ pos, chunk annals.Position }

// itemCandidates returns up to max entries of item's first tag within
// [lo, hi], in direction, whose type the item accepts, and whether it
// stopped at max (more may follow).
func itemCandidates(db *pebble.DB, item annals.QueryItem, lo, hi annals.Position, reverse bool, max int) ([]candidate, bool, error) {
	prefix := tagPrefix(item.Tags[0])
	bounds := &pebble.IterOptions{
		LowerBound: appendTagKey(nil, item.Tags[0], lo),
		UpperBound: upperTagKey(prefix, hi),
	}
	var out []candidate
	full := false
	it, err := db.NewIter(bounds)
	if err != nil {
		return nil, false, err
	}
	valid, step := it.First(), it.Next
	if reverse {
		valid, step = it.Last(), it.Prev
	}
	for ; valid; valid = step() {
		pos, chunk, typ, err := decodeTagEntry(it.Value())
		if err != nil {
			it.Close()
			return nil, false, err
		}
		if len(item.Types) > 0 && !slices.Contains(item.Types, string(typ)) {
			continue
		}
		if len(out) == max {
			full = true
			break
		}
		out = append(out, candidate{pos, chunk})
	}
	if err := it.Error(); err != nil {
		it.Close()
		return nil, false, err
	}
	return out, full, it.Close()
}

func upperTagKey(prefix []byte, hi annals.Position) []byte {
	if hi == annals.End {
		return append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
	}
	return appendTagKey(nil, string(prefix[1:len(prefix)-1]), hi+1)
}

// queryPage returns the next matching events of q within [lo, hi] in
// direction, and the position to go on from (0, false when done). Each
// item gives at most pageSize candidates; only positions every item has
// covered are returned, so the merge misses none.
func queryPage(db *pebble.DB, q annals.Query, lo, hi annals.Position, reverse bool, pageSize int) ([]annals.Event, annals.Position, bool, error) {
	seen := map[annals.Position]candidate{}
	bound, more := hi, false
	if reverse {
		bound = lo
	}
	for _, item := range q.Items {
		cands, full, err := itemCandidates(db, item, lo, hi, reverse, pageSize)
		if err != nil {
			return nil, 0, false, err
		}
		for _, c := range cands {
			seen[c.pos] = c
		}
		if full {
			last := cands[len(cands)-1].pos
			more = true
			if (!reverse && last < bound) || (reverse && last > bound) {
				bound = last
			}
		}
	}
	cands := make([]candidate, 0, len(seen))
	for _, c := range seen {
		if (!reverse && c.pos <= bound) || (reverse && c.pos >= bound) {
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if reverse {
			return compare(b.pos, a.pos)
		}
		return compare(a.pos, b.pos)
	})
	cc := chunkCache{db: db}
	var out []annals.Event
	for _, c := range cands {
		e, err := cc.event(c.pos, c.chunk)
		if err != nil {
			return nil, 0, false, err
		}
		if q.Matches(e.Type, e.Tags) {
			out = append(out, e)
		}
	}
	if !more {
		return out, 0, false, nil
	}
	if reverse {
		return out, bound - 1, true, nil
	}
	return out, bound + 1, true, nil
}

func compare(a, b annals.Position) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ReadQuery implements annals.Store: from the tag index when every item
// of q names a tag, else by scanning the log. Only durable events are
// read.
func (s *Store) ReadQuery(ctx context.Context, q annals.Query, opts annals.ReadQueryOptions) iter.Seq2[annals.Event, error] {
	if !core.Indexed(q) {
		return core.ScanQuery(ctx, s.ReadAll, q, opts)
	}
	return func(yield func(annals.Event, error) bool) {
		if err := q.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		lo, hi, ok := core.AllRead(annals.ReadAllOptions{Direction: opts.Direction, From: opts.From}, s.wm.Load())
		if !ok {
			return
		}
		reverse := opts.Direction == annals.Backwards
		var n uint64
		for {
			if err := ctx.Err(); err != nil {
				yield(annals.Event{}, err)
				return
			}
			var page []annals.Event
			var next annals.Position
			var more bool
			err := s.read(func() (err error) {
				page, next, more, err = queryPage(s.db, q, lo, hi, reverse, annals.DefaultReadBatchEvents)
				return err
			})
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				if n++; opts.Limit > 0 && n >= opts.Limit {
					return
				}
			}
			if !more {
				return
			}
			if reverse {
				hi = next
			} else {
				lo = next
			}
		}
	}
}

// FirstMatch implements core.View: the first event after after that q
// matches, among the applied groups (the index, or a scan of the log for
// an item without tags) and then the writes planned in this group.
func (o *overlay) FirstMatch(q annals.Query, after annals.Position) (annals.Position, error) {
	first, err := o.w.firstApplied(q, after)
	if err != nil || first != 0 {
		return first, err
	}
	for _, e := range o.events {
		if e.Position > after && q.Matches(e.Type, e.Tags) {
			return e.Position, nil
		}
	}
	return 0, nil
}

// firstApplied looks for a match among the applied groups: every event
// before the writer's next position, durable or not (they will be before
// this group is).
func (w *writer) firstApplied(q annals.Query, after annals.Position) (annals.Position, error) {
	if after+1 >= w.next {
		return 0, nil
	}
	hi := w.next - 1
	if core.Indexed(q) {
		if !w.tags.mayMatch(q, after) {
			return 0, nil
		}
		return w.walkMatches(q, after+1, hi)
	}
	var found annals.Position
	err := scanLog(w.s.db, after+1, min(hi, after+annals.MaxConditionScanEvents), func(e *annals.Event) bool {
		if q.Matches(e.Type, e.Tags) {
			found = e.Position
			return false
		}
		return true
	})
	if err == nil && found == 0 && hi-after > annals.MaxConditionScanEvents {
		return 0, annals.ErrConditionScan
	}
	return found, err
}

// walkMatches pages through the index for the first match in [lo, hi].
func (w *writer) walkMatches(q annals.Query, lo, hi annals.Position) (annals.Position, error) {
	for {
		page, next, more, err := queryPage(w.s.db, q, lo, hi, false, annals.DefaultReadBatchEvents)
		if err != nil {
			return 0, err
		}
		if len(page) > 0 {
			return page[0].Position, nil
		}
		if !more {
			return 0, nil
		}
		lo = next
	}
}

// scanLog calls fn with the events of [lo, hi] in order until it says stop.
func scanLog(db *pebble.DB, lo, hi annals.Position, fn func(*annals.Event) bool) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableEvent}, UpperBound: eventKey(hi + 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := seekChunk(it, lo, false); valid; valid = it.Next() {
		first, err := decodePosition(it.Key()[1:])
		if err != nil {
			return err
		}
		c, err := parseChunk(first, it.Value())
		if err != nil {
			return err
		}
		for pos := max(lo, c.first); pos <= min(hi, c.last()); pos++ {
			e, err := c.event(pos)
			if err != nil {
				return err
			}
			if !fn(&e) {
				return nil
			}
		}
	}
	return it.Error()
}

// TagCacheEntries bounds the writer's cache of where each tag was last
// written: at most this many tags (of at most annals.MaxTagBytes each,
// so at most about 4 MiB).
const TagCacheEntries = 1 << 14

// tagCache remembers, for recently written tags, the position of the
// last event that carried each, so that a condition on a tag nothing
// carried since its position is decided without reading the index (the
// common case: a decision nobody raced). It is authoritative above floor:
// every event after floor is in it, unless evicted, and eviction raises
// floor to the evicted tag's position. Only the writer uses it.
type tagCache struct {
	last  map[string]annals.Position
	floor annals.Position // events at or before it may be missing
}

func newTagCache(last annals.Position) *tagCache {
	return &tagCache{last: map[string]annals.Position{}, floor: last}
}

// wrote records an applied event's tags.
func (c *tagCache) wrote(e *annals.Event) {
	for _, t := range e.Tags {
		if _, ok := c.last[t]; !ok && len(c.last) >= TagCacheEntries {
			for old, pos := range c.last { // an arbitrary one
				c.floor = max(c.floor, pos)
				delete(c.last, old)
				break
			}
		}
		c.last[t] = e.Position
	}
}

// mayMatch reports whether an applied event after after may match q
// (every item names a tag): false if no item's first tag was written
// after after.
func (c *tagCache) mayMatch(q annals.Query, after annals.Position) bool {
	if after < c.floor {
		return true
	}
	for _, it := range q.Items {
		if pos, ok := c.last[it.Tags[0]]; ok && pos > after {
			return true
		}
	}
	return false
}
