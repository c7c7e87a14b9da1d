package core

import (
	"errors"
	"testing"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Stream states shared by the tests: the stream's last revision is 4 when it
// has events.
var (
	stMissing     = StreamState{}
	stLive        = StreamState{Exists: true, LastRevision: 4, LastPosition: 10}
	stSoftDeleted = StreamState{Exists: true, LastRevision: 4, LastPosition: 11, SoftDeleted: true}
	stTombstoned  = StreamState{Exists: true, LastRevision: 4, LastPosition: 12, Tombstoned: true}
	// A stream tombstoned before it ever had an event.
	stTombstonedEmpty = StreamState{LastPosition: 3, Tombstoned: true}
)

type outcome uint8

const (
	accept  outcome = iota + 1
	wrong           // *annals.WrongExpectedRevisionError
	deleted         // annals.ErrStreamDeleted
)

func TestStreamStateHelpers(t *testing.T) {
	tests := []struct {
		name   string
		s      StreamState
		live   bool
		actual annals.ExpectedRevision
		next   annals.Revision
	}{
		{"missing", stMissing, false, annals.NoStream, 0},
		{"live", stLive, true, annals.Exact(4), 5},
		{"live at 0", StreamState{Exists: true}, true, annals.Exact(0), 1},
		{"soft-deleted", stSoftDeleted, false, annals.NoStream, 5},
		{"tombstoned", stTombstoned, false, annals.NoStream, 5},
		{"tombstoned empty", stTombstonedEmpty, false, annals.NoStream, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Live(); got != tt.live {
				t.Errorf("Live() = %v, want %v", got, tt.live)
			}
			if got := tt.s.Actual(); got != tt.actual {
				t.Errorf("Actual() = %v, want %v", got, tt.actual)
			}
			if got := tt.s.NextRevision(); got != tt.next {
				t.Errorf("NextRevision() = %d, want %d", got, tt.next)
			}
		})
	}
}

func TestCheckExpected(t *testing.T) {
	const stream = "order-1"
	match, mismatch := annals.Exact(4), annals.Exact(3)
	tests := []struct {
		name     string
		expected annals.ExpectedRevision
		state    StreamState
		want     outcome
	}{
		// Any accepts everything but a tombstone.
		{"any/missing", annals.Any, stMissing, accept},
		{"any/live", annals.Any, stLive, accept},
		{"any/soft-deleted", annals.Any, stSoftDeleted, accept},
		{"any/tombstoned", annals.Any, stTombstoned, deleted},

		// NoStream accepts a missing or soft-deleted stream.
		{"no stream/missing", annals.NoStream, stMissing, accept},
		{"no stream/live", annals.NoStream, stLive, wrong},
		{"no stream/soft-deleted", annals.NoStream, stSoftDeleted, accept},
		{"no stream/tombstoned", annals.NoStream, stTombstoned, deleted},

		// StreamExists accepts only a live stream.
		{"stream exists/missing", annals.StreamExists, stMissing, wrong},
		{"stream exists/live", annals.StreamExists, stLive, accept},
		{"stream exists/soft-deleted", annals.StreamExists, stSoftDeleted, wrong},
		{"stream exists/tombstoned", annals.StreamExists, stTombstoned, deleted},

		// Exact(r) accepts a stream whose last revision is r, even if it
		// was soft-deleted.
		{"exact match/missing", match, stMissing, wrong},
		{"exact match/live", match, stLive, accept},
		{"exact match/soft-deleted", match, stSoftDeleted, accept},
		{"exact match/tombstoned", match, stTombstoned, deleted},
		{"exact mismatch/missing", mismatch, stMissing, wrong},
		{"exact mismatch/live", mismatch, stLive, wrong},
		{"exact mismatch/soft-deleted", mismatch, stSoftDeleted, wrong},
		{"exact mismatch/tombstoned", mismatch, stTombstoned, deleted},

		// A missing stream has no revision 0.
		{"exact 0/missing", annals.Exact(0), stMissing, wrong},
		{"exact 0/live at 0", annals.Exact(0), StreamState{Exists: true}, accept},

		// A stream tombstoned before any event is still tombstoned.
		{"any/tombstoned empty", annals.Any, stTombstonedEmpty, deleted},
		{"no stream/tombstoned empty", annals.NoStream, stTombstonedEmpty, deleted},
		{"exact 0/tombstoned empty", annals.Exact(0), stTombstonedEmpty, deleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckExpected(stream, tt.expected, tt.state)
			checkOutcome(t, err, tt.want, stream, tt.expected, tt.state)
		})
	}
}

func checkOutcome(t *testing.T, err error, want outcome, stream string, expected annals.ExpectedRevision, s StreamState) {
	t.Helper()
	switch want {
	case accept:
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
	case deleted:
		if !errors.Is(err, annals.ErrStreamDeleted) {
			t.Fatalf("err = %v, want ErrStreamDeleted", err)
		}
		if errors.Is(err, annals.ErrWrongExpectedRevision) {
			t.Fatalf("err = %v also matches ErrWrongExpectedRevision", err)
		}
	case wrong:
		var w *annals.WrongExpectedRevisionError
		if !errors.As(err, &w) {
			t.Fatalf("err = %v (%T), want *WrongExpectedRevisionError", err, err)
		}
		if !errors.Is(err, annals.ErrWrongExpectedRevision) {
			t.Errorf("err does not match ErrWrongExpectedRevision")
		}
		wantActual := annals.NoStream
		if s.Live() {
			wantActual = annals.Exact(s.LastRevision)
		}
		if w.Stream != stream || w.Expected != expected || w.Actual != wantActual {
			t.Errorf("error = {%q, expected %v, actual %v}, want {%q, expected %v, actual %v}",
				w.Stream, w.Expected, w.Actual, stream, expected, wantActual)
		}
	}
}

func TestDecide(t *testing.T) {
	const stream = "order-1"
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	at := func(s string, rev annals.Revision, pos annals.Position) Recorded {
		return Recorded{Found: true, Stream: s, Revision: rev, Position: pos}
	}
	var none Recorded
	// The stream's events 2, 3, 4 (positions 7, 8, 10) are a, b, c.
	runFound := []Recorded{at(stream, 2, 7), at(stream, 3, 8), at(stream, 4, 10)}
	dupResult := annals.AppendResult{NextExpected: annals.Exact(4), FirstPosition: 7, LastPosition: 10}

	type want struct {
		outcome   outcome // accept, wrong, deleted, or 0 for a duplicate event error
		duplicate bool    // accept as a retry with result
		result    annals.AppendResult
		dupID     uuid.UUID // the id a DuplicateEventError names
		dupAt     Recorded
	}
	tests := []struct {
		name     string
		expected annals.ExpectedRevision
		state    StreamState
		ids      []uuid.UUID
		found    []Recorded
		want     want
	}{
		// Nothing recorded: the expectation decides.
		{"new/ok", annals.Exact(4), stLive, []uuid.UUID{a, b}, []Recorded{none, none}, want{outcome: accept}},
		{"new/wrong", annals.Exact(3), stLive, []uuid.UUID{a}, []Recorded{none}, want{outcome: wrong}},
		{"new/tombstoned", annals.Any, stTombstoned, []uuid.UUID{a}, []Recorded{none}, want{outcome: deleted}},
		{"new/generated ids", annals.NoStream, stMissing, []uuid.UUID{{}, {}}, []Recorded{none, none}, want{outcome: accept}},
		{"no events/ok", annals.StreamExists, stLive, nil, nil, want{outcome: accept}},
		{"no events/wrong", annals.NoStream, stLive, nil, nil, want{outcome: wrong}},

		// A retry: the whole run, in order, in this stream, with an
		// expectation that names the place before it.
		{"retry/exact", annals.Exact(1), stLive, []uuid.UUID{a, b, c}, runFound, want{duplicate: true, result: dupResult}},
		{"retry/any", annals.Any, stLive, []uuid.UUID{a, b, c}, runFound, want{duplicate: true, result: dupResult}},
		{"retry/stream exists", annals.StreamExists, stLive, []uuid.UUID{a, b, c}, runFound, want{duplicate: true, result: dupResult}},
		{"retry/stream moved on", annals.Exact(1), StreamState{Exists: true, LastRevision: 9, LastPosition: 20},
			[]uuid.UUID{a, b, c}, runFound, want{duplicate: true, result: dupResult}},
		{"retry/single", annals.Exact(2), stLive, []uuid.UUID{b}, []Recorded{at(stream, 3, 8)},
			want{duplicate: true, result: annals.AppendResult{NextExpected: annals.Exact(3), FirstPosition: 8, LastPosition: 8}}},
		{"retry/no stream", annals.NoStream, stLive, []uuid.UUID{a, b}, []Recorded{at(stream, 0, 1), at(stream, 1, 2)},
			want{duplicate: true, result: annals.AppendResult{NextExpected: annals.Exact(1), FirstPosition: 1, LastPosition: 2}}},
		{"retry/soft-deleted since", annals.Exact(1), stSoftDeleted, []uuid.UUID{a, b, c}, runFound, want{duplicate: true, result: dupResult}},

		// Anything else recorded is a duplicate id.
		{"partial/first", annals.Exact(1), stLive, []uuid.UUID{a, b, c}, []Recorded{runFound[0], none, none},
			want{dupID: a, dupAt: runFound[0]}},
		{"partial/middle", annals.Exact(4), stLive, []uuid.UUID{c, b, a}, []Recorded{none, runFound[1], none},
			want{dupID: b, dupAt: runFound[1]}},
		{"partial/prefix of run", annals.Exact(1), stLive, []uuid.UUID{a, b, {}}, []Recorded{runFound[0], runFound[1], none},
			want{dupID: a, dupAt: runFound[0]}},
		{"wrong order", annals.Exact(1), stLive, []uuid.UUID{b, a}, []Recorded{runFound[1], runFound[0]},
			want{dupID: b, dupAt: runFound[1]}},
		{"not consecutive", annals.Exact(1), stLive, []uuid.UUID{a, c}, []Recorded{runFound[0], runFound[2]},
			want{dupID: a, dupAt: runFound[0]}},
		{"other stream", annals.Any, stLive, []uuid.UUID{a}, []Recorded{at("order-2", 0, 3)},
			want{dupID: a, dupAt: at("order-2", 0, 3)}},
		{"other stream in run", annals.Any, stLive, []uuid.UUID{a, b}, []Recorded{runFound[0], at("order-2", 3, 9)},
			want{dupID: a, dupAt: runFound[0]}},
		{"exact before run mismatch", annals.Exact(0), stLive, []uuid.UUID{a, b, c}, runFound,
			want{dupID: a, dupAt: runFound[0]}},
		{"exact at run end", annals.Exact(4), stLive, []uuid.UUID{a, b, c}, runFound,
			want{dupID: a, dupAt: runFound[0]}},
		// After a soft delete a NoStream append lands past revision 0; its
		// retry must still be recognised.
		{"no stream, run not at 0", annals.NoStream, stLive, []uuid.UUID{a, b, c}, runFound,
			want{duplicate: true, result: dupResult}},
		// Exact(max) must not wrap around to name the place before revision 0.
		{"exact max before run at 0", annals.Exact(annals.End), stLive, []uuid.UUID{a, b}, []Recorded{at(stream, 0, 1), at(stream, 1, 2)},
			want{dupID: a, dupAt: at(stream, 0, 1)}},
		{"exact before run at 0", annals.Exact(0), stLive, []uuid.UUID{a, b}, []Recorded{at(stream, 0, 1), at(stream, 1, 2)},
			want{dupID: a, dupAt: at(stream, 0, 1)}},
		{"found on a missing stream", annals.NoStream, stMissing, []uuid.UUID{a}, []Recorded{at("order-2", 0, 1)},
			want{dupID: a, dupAt: at("order-2", 0, 1)}},

		// A tombstone wins over everything.
		{"retry/tombstoned", annals.Exact(1), stTombstoned, []uuid.UUID{a, b, c}, runFound, want{outcome: deleted}},
		{"duplicate/tombstoned", annals.Any, stTombstoned, []uuid.UUID{a}, []Recorded{at("order-2", 0, 3)}, want{outcome: deleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(stream, tt.expected, tt.state, tt.ids, tt.found)
			switch {
			case tt.want.duplicate:
				if d.Err != nil || !d.Duplicate {
					t.Fatalf("Decide = %+v, want duplicate", d)
				}
				if d.Result != tt.want.result {
					t.Errorf("Result = %+v, want %+v", d.Result, tt.want.result)
				}
			case tt.want.outcome != 0:
				if d.Duplicate {
					t.Fatalf("Decide = %+v, want no duplicate", d)
				}
				if d.Result != (annals.AppendResult{}) {
					t.Errorf("Result = %+v, want zero", d.Result)
				}
				checkOutcome(t, d.Err, tt.want.outcome, stream, tt.expected, tt.state)
			default:
				if d.Duplicate {
					t.Fatalf("Decide = %+v, want a DuplicateEventError", d)
				}
				var de *annals.DuplicateEventError
				if !errors.As(d.Err, &de) {
					t.Fatalf("err = %v (%T), want *DuplicateEventError", d.Err, d.Err)
				}
				if !errors.Is(d.Err, annals.ErrDuplicateEventID) {
					t.Errorf("err does not match ErrDuplicateEventID")
				}
				if de.ID != tt.want.dupID || de.Stream != tt.want.dupAt.Stream || de.Revision != tt.want.dupAt.Revision {
					t.Errorf("error = {%v, %q, %d}, want {%v, %q, %d}",
						de.ID, de.Stream, de.Revision, tt.want.dupID, tt.want.dupAt.Stream, tt.want.dupAt.Revision)
				}
			}
		})
	}
}
