package memory

import (
	"context"
	"iter"
	"sort"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/annals/annals/internal/links"
)

// indexLocked adds e to its index streams; the caller holds s.mu for
// writing.
func (s *Store) indexLocked(e *annals.Event) {
	var buf [links.MaxNames]string
	for _, name := range links.Names(buf[:0], e) {
		s.index[name] = append(s.index[name], e.Position)
	}
}

func (s *Store) indexStateLocked(name string) core.StreamState {
	ps := s.index[name]
	if len(ps) == 0 {
		return core.StreamState{}
	}
	return core.StreamState{Exists: true, LastRevision: annals.Revision(len(ps) - 1), LastPosition: ps[len(ps)-1]}
}

// links is what package links reads of the store.
func (s *Store) links() links.Source {
	return links.Source{
		ReadStream: s.readStream,
		ReadAll:    s.readAll,
		State:      s.durableState,
		Metadata: func(ctx context.Context, name string) (annals.StreamMetadata, error) {
			md, _, err := s.StreamMetadata(ctx, name)
			return md, err
		},
		Entries:   s.entries,
		Positions: s.positions,
		Now:       s.now,
	}
}

// indexPositions returns the entries of name (an append-only slice: the
// prefix returned never changes).
func (s *Store) indexPositions(name string) ([]annals.Position, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, annals.ErrClosed
	}
	return s.index[name], nil
}

func (s *Store) entries(ctx context.Context, name string, lo, hi annals.Revision, dir annals.Direction) iter.Seq2[links.Entry, error] {
	return func(yield func(links.Entry, error) bool) {
		ps, err := s.indexPositions(name)
		if err != nil {
			yield(links.Entry{}, err)
			return
		}
		hi = min(hi, annals.Revision(len(ps))-1)
		if len(ps) == 0 || lo > hi {
			return
		}
		for i := range hi - lo + 1 {
			r := lo + i
			if dir == annals.Backwards {
				r = hi - i
			}
			if !s.yieldEntry(ctx, r, ps[r], yield) {
				return
			}
		}
	}
}

func (s *Store) positions(ctx context.Context, name string, from annals.Position, dir annals.Direction) iter.Seq2[links.Entry, error] {
	return func(yield func(links.Entry, error) bool) {
		ps, err := s.indexPositions(name)
		if err != nil {
			yield(links.Entry{}, err)
			return
		}
		if dir == annals.Forwards {
			for r := sort.Search(len(ps), func(i int) bool { return ps[i] >= from }); r < len(ps); r++ {
				if !s.yieldEntry(ctx, annals.Revision(r), ps[r], yield) {
					return
				}
			}
			return
		}
		for r := sort.Search(len(ps), func(i int) bool { return ps[i] > from }) - 1; r >= 0; r-- {
			if !s.yieldEntry(ctx, annals.Revision(r), ps[r], yield) {
				return
			}
		}
	}
}

func (s *Store) yieldEntry(ctx context.Context, r annals.Revision, pos annals.Position, yield func(links.Entry, error) bool) bool {
	if err := ctx.Err(); err != nil {
		yield(links.Entry{}, err)
		return false
	}
	e, err := s.at(pos)
	if err != nil {
		yield(links.Entry{}, err)
		return false
	}
	return yield(links.Entry{Revision: r, Event: e}, nil)
}
