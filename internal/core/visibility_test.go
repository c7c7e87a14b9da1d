package core

import (
	"errors"
	"testing"
	"time"

	"github.com/annals/annals"
)

var visNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func TestVisibleWindow(t *testing.T) {
	live := func(last annals.Revision) StreamState { return StreamState{Exists: true, LastRevision: last} }
	tests := []struct {
		name  string
		state StreamState
		md    annals.StreamMetadata
		want  Window
		empty bool
	}{
		{"no metadata", live(9), annals.StreamMetadata{}, Window{First: 0, Last: 9}, false},
		{"single event", live(0), annals.StreamMetadata{}, Window{First: 0, Last: 0}, false},
		{"max count", live(9), annals.StreamMetadata{MaxCount: 3}, Window{First: 7, Last: 9}, false},
		{"max count 1", live(9), annals.StreamMetadata{MaxCount: 1}, Window{First: 9, Last: 9}, false},
		{"max count = length", live(9), annals.StreamMetadata{MaxCount: 10}, Window{First: 0, Last: 9}, false},
		{"max count > length", live(9), annals.StreamMetadata{MaxCount: 100}, Window{First: 0, Last: 9}, false},
		{"truncate before", live(9), annals.StreamMetadata{TruncateBefore: 4}, Window{First: 4, Last: 9}, false},
		{"truncate before last", live(9), annals.StreamMetadata{TruncateBefore: 9}, Window{First: 9, Last: 9}, false},
		{"truncate before past end", live(9), annals.StreamMetadata{TruncateBefore: 10}, Window{First: 10, Last: 9}, true},
		{"truncate before deleted", live(9), annals.StreamMetadata{TruncateBefore: annals.TruncateBeforeDeleted},
			Window{First: annals.TruncateBeforeDeleted, Last: 9}, true},
		{"max count wins", live(9), annals.StreamMetadata{MaxCount: 3, TruncateBefore: 2}, Window{First: 7, Last: 9}, false},
		{"truncate before wins", live(9), annals.StreamMetadata{MaxCount: 8, TruncateBefore: 5}, Window{First: 5, Last: 9}, false},
		{"max age", live(9), annals.StreamMetadata{MaxAge: time.Hour},
			Window{First: 0, Last: 9, NotBefore: visNow.Add(-time.Hour)}, false},
		{"all three", live(9), annals.StreamMetadata{MaxCount: 5, TruncateBefore: 3, MaxAge: time.Minute},
			Window{First: 5, Last: 9, NotBefore: visNow.Add(-time.Minute)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := VisibleWindow(tt.state, tt.md, visNow)
			if got.First != tt.want.First || got.Last != tt.want.Last || !got.NotBefore.Equal(tt.want.NotBefore) {
				t.Errorf("VisibleWindow = %+v, want %+v", got, tt.want)
			}
			if got.Empty() != tt.empty {
				t.Errorf("Empty() = %v, want %v", got.Empty(), tt.empty)
			}
		})
	}
}

func TestWindowShows(t *testing.T) {
	w := Window{First: 3, Last: 7, NotBefore: visNow.Add(-time.Hour)}
	ev := func(rev annals.Revision, age time.Duration) *annals.Event {
		return &annals.Event{Revision: rev, Recorded: visNow.Add(-age)}
	}
	tests := []struct {
		name string
		e    *annals.Event
		want bool
	}{
		{"inside", ev(5, time.Minute), true},
		{"first", ev(3, 0), true},
		{"last", ev(7, 0), true},
		{"before first", ev(2, 0), false},
		{"after last", ev(8, 0), false},
		{"exactly max age", ev(5, time.Hour), true},
		{"too old", ev(5, time.Hour+time.Nanosecond), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.Shows(tt.e); got != tt.want {
				t.Errorf("Shows(rev %d, recorded %v) = %v, want %v", tt.e.Revision, tt.e.Recorded, got, tt.want)
			}
		})
	}
	noAge := Window{First: 0, Last: 7}
	if !noAge.Shows(ev(1, 1000*time.Hour)) {
		t.Errorf("a window without max age hides an old event")
	}
}

func TestWindowRange(t *testing.T) {
	w := Window{First: 3, Last: 7}
	tests := []struct {
		name   string
		w      Window
		dir    annals.Direction
		from   annals.Revision
		lo, hi annals.Revision
		ok     bool
	}{
		{"forwards from start", w, annals.Forwards, annals.Start, 3, 7, true},
		{"forwards inside", w, annals.Forwards, 5, 5, 7, true},
		{"forwards from first", w, annals.Forwards, 3, 3, 7, true},
		{"forwards from last", w, annals.Forwards, 7, 7, 7, true},
		{"forwards past last", w, annals.Forwards, 8, 0, 0, false},
		{"forwards from end", w, annals.Forwards, annals.End, 0, 0, false},
		{"backwards from end", w, annals.Backwards, annals.End, 3, 7, true},
		{"backwards inside", w, annals.Backwards, 5, 3, 5, true},
		{"backwards from last", w, annals.Backwards, 7, 3, 7, true},
		{"backwards from first", w, annals.Backwards, 3, 3, 3, true},
		{"backwards before first", w, annals.Backwards, 2, 0, 0, false},
		{"backwards from start", w, annals.Backwards, annals.Start, 0, 0, false},
		{"whole stream backwards from start", Window{First: 0, Last: 7}, annals.Backwards, annals.Start, 0, 0, true},
		{"empty forwards", Window{First: 8, Last: 7}, annals.Forwards, annals.Start, 0, 0, false},
		{"empty backwards", Window{First: 8, Last: 7}, annals.Backwards, annals.End, 0, 0, false},
		{"deleted", Window{First: annals.TruncateBeforeDeleted, Last: 7}, annals.Backwards, annals.End, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, ok := tt.w.Range(tt.dir, tt.from)
			if ok != tt.ok || (ok && (lo != tt.lo || hi != tt.hi)) {
				t.Errorf("Range(%d, %d) = %d, %d, %v; want %d, %d, %v", tt.dir, tt.from, lo, hi, ok, tt.lo, tt.hi, tt.ok)
			}
		})
	}
}

func TestPlanStreamRead(t *testing.T) {
	tests := []struct {
		name   string
		state  StreamState
		md     annals.StreamMetadata
		opts   annals.ReadStreamOptions
		err    error
		lo, hi annals.Revision
		empty  bool
	}{
		{"missing", stMissing, annals.StreamMetadata{}, annals.ReadStreamOptions{}, annals.ErrStreamNotFound, 0, 0, false},
		{"soft-deleted", stSoftDeleted, annals.StreamMetadata{}, annals.ReadStreamOptions{}, annals.ErrStreamNotFound, 0, 0, false},
		{"tombstoned", stTombstoned, annals.StreamMetadata{}, annals.ReadStreamOptions{}, annals.ErrStreamDeleted, 0, 0, false},
		{"tombstoned empty", stTombstonedEmpty, annals.StreamMetadata{}, annals.ReadStreamOptions{}, annals.ErrStreamDeleted, 0, 0, false},
		{"all", stLive, annals.StreamMetadata{}, annals.ReadStreamOptions{}, nil, 0, 4, false},
		{"max count", stLive, annals.StreamMetadata{MaxCount: 2}, annals.ReadStreamOptions{}, nil, 3, 4, false},
		{"max count backwards", stLive, annals.StreamMetadata{MaxCount: 2},
			annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End}, nil, 3, 4, false},
		{"truncated away", stLive, annals.StreamMetadata{TruncateBefore: 5}, annals.ReadStreamOptions{}, nil, 0, 0, true},
		{"past the end", stLive, annals.StreamMetadata{}, annals.ReadStreamOptions{From: 5}, nil, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Limit = 3
			r, err := PlanStreamRead("s", tt.state, tt.md, opts, visNow)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Empty != tt.empty || (!r.Empty && (r.Lo != tt.lo || r.Hi != tt.hi)) {
				t.Errorf("PlanStreamRead = %+v, want Lo %d Hi %d Empty %v", r, tt.lo, tt.hi, tt.empty)
			}
			if r.Direction != opts.Direction || r.Limit != 3 {
				t.Errorf("direction %d limit %d not kept", r.Direction, r.Limit)
			}
		})
	}
}

// TestStreamReadTake runs Take over a whole stream the way a backend does
// and checks which revisions come out.
func TestStreamReadTake(t *testing.T) {
	// Revisions 0..9; revision r was recorded (10-r) minutes before now, so
	// with MaxAge 5m revisions 5..9 are young enough.
	stream := make([]annals.Event, 10)
	for r := range stream {
		stream[r] = annals.Event{Revision: annals.Revision(r), Recorded: visNow.Add(-time.Duration(10-r) * time.Minute)}
	}
	// An event whose clock went backwards is hidden but does not stop a
	// forwards read.
	odd := make([]annals.Event, len(stream))
	copy(odd, stream)
	odd[7].Recorded = visNow.Add(-time.Hour)

	state := StreamState{Exists: true, LastRevision: 9}
	tests := []struct {
		name   string
		events []annals.Event
		md     annals.StreamMetadata
		opts   annals.ReadStreamOptions
		want   []annals.Revision
		// fetched is how many events the read looked at before it stopped.
		fetched int
	}{
		{"all forwards", stream, annals.StreamMetadata{}, annals.ReadStreamOptions{},
			[]annals.Revision{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10},
		{"all backwards", stream, annals.StreamMetadata{}, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End},
			[]annals.Revision{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 10},
		{"limit forwards", stream, annals.StreamMetadata{}, annals.ReadStreamOptions{From: 2, Limit: 3},
			[]annals.Revision{2, 3, 4}, 4},
		{"limit backwards", stream, annals.StreamMetadata{}, annals.ReadStreamOptions{Direction: annals.Backwards, From: 6, Limit: 2},
			[]annals.Revision{6, 5}, 3},
		{"max age forwards", stream, annals.StreamMetadata{MaxAge: 5 * time.Minute}, annals.ReadStreamOptions{},
			[]annals.Revision{5, 6, 7, 8, 9}, 10},
		{"max age backwards stops at first too old", stream, annals.StreamMetadata{MaxAge: 5 * time.Minute},
			annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End}, []annals.Revision{9, 8, 7, 6, 5}, 6},
		{"max age forwards continues past an old event", odd, annals.StreamMetadata{MaxAge: 5 * time.Minute}, annals.ReadStreamOptions{},
			[]annals.Revision{5, 6, 8, 9}, 10},
		{"max age backwards stops at an old event", odd, annals.StreamMetadata{MaxAge: 5 * time.Minute},
			annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End}, []annals.Revision{9, 8}, 3},
		{"max age and limit", stream, annals.StreamMetadata{MaxAge: 5 * time.Minute}, annals.ReadStreamOptions{Limit: 2},
			[]annals.Revision{5, 6}, 8},
		{"max count and max age", stream, annals.StreamMetadata{MaxCount: 7, MaxAge: 5 * time.Minute}, annals.ReadStreamOptions{},
			[]annals.Revision{5, 6, 7, 8, 9}, 7},
		{"max count backwards with limit", stream, annals.StreamMetadata{MaxCount: 4},
			annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 10}, []annals.Revision{9, 8, 7, 6}, 4},
		{"truncate before and max count", stream, annals.StreamMetadata{TruncateBefore: 8, MaxCount: 4}, annals.ReadStreamOptions{},
			[]annals.Revision{8, 9}, 2},
		{"truncate before, max age, backwards from inside", stream,
			annals.StreamMetadata{TruncateBefore: 3, MaxAge: 8 * time.Minute},
			annals.ReadStreamOptions{Direction: annals.Backwards, From: 6}, []annals.Revision{6, 5, 4, 3}, 4},
		{"everything too old", stream, annals.StreamMetadata{MaxAge: time.Second}, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End},
			nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := PlanStreamRead("s", state, tt.md, tt.opts, visNow)
			if err != nil {
				t.Fatal(err)
			}
			var got []annals.Revision
			fetched := 0
			if !r.Empty {
				next, step := r.Lo, annals.Revision(1)
				if r.Direction == annals.Backwards {
					next, step = r.Hi, annals.End
				}
				var yielded uint64
				for n := r.Hi - r.Lo + 1; n > 0; n-- {
					fetched++
					keep, more := r.Take(&tt.events[next], yielded)
					if keep {
						yielded++
						got = append(got, next)
					}
					if !more {
						break
					}
					next += step
				}
			}
			if !equalRevs(got, tt.want) {
				t.Errorf("read %v, want %v", got, tt.want)
			}
			if fetched != tt.fetched {
				t.Errorf("fetched %d events, want %d", fetched, tt.fetched)
			}
		})
	}
}

func equalRevs(a, b []annals.Revision) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTake(t *testing.T) {
	w := Window{First: 0, Last: 9, NotBefore: visNow.Add(-time.Minute)}
	young := &annals.Event{Revision: 5, Recorded: visNow}
	old := &annals.Event{Revision: 5, Recorded: visNow.Add(-time.Hour)}
	tests := []struct {
		name       string
		dir        annals.Direction
		limit      uint64
		e          *annals.Event
		yielded    uint64
		keep, more bool
	}{
		{"forwards young", annals.Forwards, 0, young, 100, true, true},
		{"forwards old", annals.Forwards, 0, old, 0, false, true},
		{"backwards young", annals.Backwards, 0, young, 0, true, true},
		{"backwards old", annals.Backwards, 0, old, 0, false, false},
		{"under limit", annals.Forwards, 3, young, 2, true, true},
		{"at limit", annals.Forwards, 3, young, 3, false, false},
		{"at limit backwards", annals.Backwards, 1, young, 1, false, false},
		{"old at limit", annals.Forwards, 1, old, 1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := StreamRead{Lo: 0, Hi: 9, Direction: tt.dir, Window: w, Limit: tt.limit}
			keep, more := r.Take(tt.e, tt.yielded)
			if keep != tt.keep || more != tt.more {
				t.Errorf("Take = %v, %v; want %v, %v", keep, more, tt.keep, tt.more)
			}
		})
	}
}

func TestAllRead(t *testing.T) {
	tests := []struct {
		name    string
		opts    annals.ReadAllOptions
		durable annals.Position
		lo, hi  annals.Position
		ok      bool
	}{
		{"forwards from start", annals.ReadAllOptions{}, 10, 1, 10, true},
		{"forwards from 1", annals.ReadAllOptions{From: 1}, 10, 1, 10, true},
		{"forwards from inside", annals.ReadAllOptions{From: 4}, 10, 4, 10, true},
		{"forwards from durable", annals.ReadAllOptions{From: 10}, 10, 10, 10, true},
		{"forwards past durable", annals.ReadAllOptions{From: 11}, 10, 0, 0, false},
		{"forwards from end", annals.ReadAllOptions{From: annals.End}, 10, 0, 0, false},
		{"forwards empty log", annals.ReadAllOptions{}, 0, 0, 0, false},
		{"backwards from end", annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End}, 10, 1, 10, true},
		{"backwards from past durable", annals.ReadAllOptions{Direction: annals.Backwards, From: 50}, 10, 1, 10, true},
		{"backwards from inside", annals.ReadAllOptions{Direction: annals.Backwards, From: 4}, 10, 1, 4, true},
		{"backwards from 1", annals.ReadAllOptions{Direction: annals.Backwards, From: 1}, 10, 1, 1, true},
		{"backwards from start", annals.ReadAllOptions{Direction: annals.Backwards, From: annals.Start}, 10, 0, 0, false},
		{"backwards empty log", annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End}, 0, 0, 0, false},
		// The limit and the filter are the caller's business.
		{"limit ignored", annals.ReadAllOptions{From: 2, Limit: 1}, 10, 2, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, ok := AllRead(tt.opts, tt.durable)
			if ok != tt.ok || (ok && (lo != tt.lo || hi != tt.hi)) {
				t.Errorf("AllRead = %d, %d, %v; want %d, %d, %v", lo, hi, ok, tt.lo, tt.hi, tt.ok)
			}
		})
	}
}
