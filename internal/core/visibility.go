package core

import (
	"time"

	"github.com/annals/annals"
)

// Window is the range of a stream's revisions that reads may show, as its
// metadata defines it: revisions in [First, Last] recorded at or after
// NotBefore. Empty when First > Last.
type Window struct {
	First, Last annals.Revision
	NotBefore   time.Time // zero: no age limit
}

// VisibleWindow computes the window of a live stream with metadata md at
// time now.
func VisibleWindow(s StreamState, md annals.StreamMetadata, now time.Time) Window {
	w := Window{First: 0, Last: s.LastRevision}
	if md.TruncateBefore > w.First {
		w.First = md.TruncateBefore
	}
	if md.MaxCount > 0 && uint64(s.LastRevision)+1 > md.MaxCount {
		w.First = max(w.First, s.LastRevision+1-annals.Revision(md.MaxCount))
	}
	if md.MaxAge > 0 {
		w.NotBefore = now.Add(-md.MaxAge)
	}
	return w
}

// Empty reports whether no revision is visible.
func (w Window) Empty() bool { return w.First > w.Last }

// Shows reports whether an event is visible.
func (w Window) Shows(e *annals.Event) bool {
	return e.Revision >= w.First && e.Revision <= w.Last &&
		(w.NotBefore.IsZero() || !e.Recorded.Before(w.NotBefore))
}

// Range returns the revisions a read asks for, clipped to the window: the
// read starts at from, goes in dir, and returns at most limit events (0: no
// limit). ok is false when nothing is left.
func (w Window) Range(dir annals.Direction, from annals.Revision) (lo, hi annals.Revision, ok bool) {
	if w.Empty() {
		return 0, 0, false
	}
	if dir == annals.Forwards {
		lo = max(from, w.First)
		return lo, w.Last, lo <= w.Last
	}
	hi = min(from, w.Last)
	return w.First, hi, hi >= w.First
}
