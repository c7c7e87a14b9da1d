package embedded

import (
	"bytes"
	"context"
	"errors"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/cockroachdb/pebble/v2"
)

var _ annals.StreamLister = (*Store)(nil)

// metastreamsEnd is the least name after every metastream: all of "$$x"
// sort between "$$" and "$%", so a listing that meets one seeks here
// instead of stepping over each.
const metastreamsEnd = "$%"

// ListStreams implements annals.StreamLister: a bounded scan of the head
// table, each head completed from the last key of its stream index, as
// ReadStream's state is. Pebble shows a batch before its fsync, so a page
// that holds a change past the durable watermark waits for it (one fsync
// at most), as a stream read does.
func (s *Store) ListStreams(ctx context.Context, opts annals.ListStreamsOptions) ([]annals.StreamInfo, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var page []annals.StreamInfo
	var newest annals.Position
	err := s.read(func() (err error) {
		page, newest, err = listHeads(s.db, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	if newest > s.wm.Load() {
		if _, err := s.wm.Wait(ctx, newest-1); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// listHeads reads one page of heads and returns it with the greatest
// LastPosition in it. Both iterators share one view of the engine (the
// index one is a clone), so a head and its index agree.
func listHeads(db *pebble.DB, opts annals.ListStreamsOptions) (page []annals.StreamInfo, newest annals.Position, err error) {
	lower := headKey(opts.Prefix)
	if after := append(headKey(opts.After), 0); bytes.Compare(after, lower) > 0 {
		lower = after // names never hold 0x00: the least key after After's
	}
	heads, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(headKey(opts.Prefix))})
	if err != nil {
		return nil, 0, err
	}
	defer heads.Close()
	index, err := heads.Clone(pebble.CloneOptions{IterOptions: &pebble.IterOptions{
		LowerBound: []byte{tableStream}, UpperBound: []byte{tableStream + 1},
	}})
	if err != nil {
		return nil, 0, err
	}
	defer index.Close()
	limit := opts.PageSize()
	for valid := heads.First(); valid && len(page) < limit; {
		name := string(heads.Key()[1:])
		if _, meta := annals.IsMetastream(name); meta {
			valid = heads.SeekGE(headKey(metastreamsEnd))
			continue
		}
		st, err := decodeHead(heads.Value())
		if err != nil {
			return nil, 0, err
		}
		prefix := streamPrefix(name)
		if index.SeekLT(upperStreamKey(prefix, annals.End)) && bytes.HasPrefix(index.Key(), prefix) {
			if st, err = withIndexTail(st, len(prefix), index.Key(), index.Value()); err != nil {
				return nil, 0, err
			}
		}
		if st.Exists || st.Tombstoned {
			page = append(page, streamInfo(name, st))
			newest = max(newest, st.LastPosition)
		}
		valid = heads.Next()
	}
	if err := errors.Join(heads.Error(), index.Error()); err != nil {
		return nil, 0, err
	}
	return page, newest, nil
}

// prefixEnd returns the least key greater than every key that starts with
// p, or nil if there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			end := append([]byte(nil), p[:i+1]...)
			end[i]++
			return end
		}
	}
	return nil
}

func streamInfo(name string, st core.StreamState) annals.StreamInfo {
	return annals.StreamInfo{
		Name: name, LastRevision: st.LastRevision, LastPosition: st.LastPosition,
		Deleted: st.SoftDeleted, Tombstoned: st.Tombstoned,
	}
}
