package core

import (
	"time"

	"github.com/annals/annals"
)

// StreamRead is what a backend must fetch to serve a stream read: the
// revisions Lo..Hi in Direction, keeping events Window.Shows, at most Limit
// (0: no limit).
type StreamRead struct {
	Lo, Hi    annals.Revision
	Direction annals.Direction
	Window    Window
	Limit     uint64
	Empty     bool // nothing to fetch
}

// PlanStreamRead turns a stream's durable state and metadata into the range
// to fetch, or the error the read yields.
func PlanStreamRead(stream string, st StreamState, md annals.StreamMetadata, opts annals.ReadStreamOptions, now time.Time) (StreamRead, error) {
	if st.Tombstoned {
		return StreamRead{}, annals.StreamDeleted(stream)
	}
	if !st.Live() {
		return StreamRead{}, annals.StreamNotFound(stream)
	}
	w := VisibleWindow(st, md, now)
	lo, hi, ok := w.Range(opts.Direction, opts.From)
	return StreamRead{Lo: lo, Hi: hi, Direction: opts.Direction, Window: w, Limit: opts.Limit, Empty: !ok}, nil
}

// Take applies the window and the limit to a fetched event: keep reports
// whether to yield it, more whether to go on.
func (r *StreamRead) Take(e *annals.Event, yielded uint64) (keep, more bool) {
	if r.Limit > 0 && yielded >= r.Limit {
		return false, false
	}
	if !r.Window.Shows(e) {
		// Age only grows along a stream: forwards, later events may show;
		// backwards, every earlier one is older still.
		return false, r.Direction == annals.Forwards
	}
	return true, true
}

// AllRead bounds an $all read by the durable position: the positions to
// scan, in order.
func AllRead(opts annals.ReadAllOptions, durable annals.Position) (lo, hi annals.Position, ok bool) {
	if opts.Direction == annals.Forwards {
		lo = max(opts.From, 1)
		return lo, durable, lo <= durable
	}
	hi = min(opts.From, durable)
	return 1, hi, hi >= 1
}
