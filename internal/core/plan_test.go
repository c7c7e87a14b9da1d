package core

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// fakeView is a View over in-memory maps.
type fakeView struct {
	states   map[string]StreamState
	metadata map[string]annals.StreamMetadata
	recorded map[uuid.UUID]Recorded
	matchAt  annals.Position // FirstMatch's answer for any query after less than it
	err      error           // returned by every method when set
}

func newFakeView() *fakeView {
	return &fakeView{
		states:   make(map[string]StreamState),
		metadata: make(map[string]annals.StreamMetadata),
		recorded: make(map[uuid.UUID]Recorded),
	}
}

func (v *fakeView) State(stream string) (StreamState, error) { return v.states[stream], v.err }
func (v *fakeView) Metadata(stream string) (annals.StreamMetadata, error) {
	return v.metadata[stream], v.err
}
func (v *fakeView) Lookup(stream string, id uuid.UUID) (Recorded, error) {
	if r := v.recorded[id]; r.Stream == stream {
		return r, v.err
	}
	return Recorded{}, v.err
}

func (v *fakeView) FirstMatch(q annals.Query, after annals.Position) (annals.Position, error) {
	if v.matchAt > after {
		return v.matchAt, v.err
	}
	return 0, v.err
}

var planNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func events(types ...string) []annals.EventData {
	out := make([]annals.EventData, len(types))
	for i, t := range types {
		out[i] = annals.EventData{Type: t, Data: []byte(`{}`)}
	}
	return out
}

// checkEvents checks the stream, type, revision and position of planned
// events, and what every new event shares.
func checkEvents(t *testing.T, got []annals.Event, want []annals.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("planned %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Stream != w.Stream || g.Type != w.Type || g.Revision != w.Revision || g.Position != w.Position {
			t.Errorf("event[%d] = {%q %q rev %d pos %d}, want {%q %q rev %d pos %d}",
				i, g.Stream, g.Type, g.Revision, g.Position, w.Stream, w.Type, w.Revision, w.Position)
		}
		if !g.Recorded.Equal(planNow) {
			t.Errorf("event[%d].Recorded = %v, want %v", i, g.Recorded, planNow)
		}
		if g.ID == (uuid.UUID{}) {
			t.Errorf("event[%d] has the zero id", i)
		}
	}
}

func metadataOf(t *testing.T, e annals.Event) annals.StreamMetadata {
	t.Helper()
	if e.Type != annals.EventTypeMetadata {
		t.Fatalf("event type %q, want %s", e.Type, annals.EventTypeMetadata)
	}
	md, err := annals.ParseStreamMetadata(e.Data)
	if err != nil {
		t.Fatalf("metadata event data %s: %v", e.Data, err)
	}
	return md
}

func TestPlanAppendNewStream(t *testing.T) {
	v := newFakeView()
	id := uuid.New()
	op := &Op{Kind: OpAppend, Stream: "order-1", Expected: annals.NoStream, Events: []annals.EventData{
		{Type: "A", Data: []byte(`{"a":1}`), Metadata: []byte(`{"m":1}`)},
		{ID: id, Type: "B", ContentType: annals.ContentTypeBinary, Data: []byte{1, 2}},
		{Type: "C"},
	}}
	p := PlanOp(v, op, 7, planNow)
	if p.Err != nil || p.Duplicate {
		t.Fatalf("PlanOp = %+v", p)
	}
	checkEvents(t, p.Events, []annals.Event{
		{Stream: "order-1", Type: "A", Revision: 0, Position: 7},
		{Stream: "order-1", Type: "B", Revision: 1, Position: 8},
		{Stream: "order-1", Type: "C", Revision: 2, Position: 9},
	})
	e0, e1, e2 := p.Events[0], p.Events[1], p.Events[2]
	if e0.ContentType != annals.ContentTypeJSON || e2.ContentType != annals.ContentTypeJSON {
		t.Errorf("default content types %q, %q, want %q", e0.ContentType, e2.ContentType, annals.ContentTypeJSON)
	}
	if e1.ContentType != annals.ContentTypeBinary {
		t.Errorf("content type %q, want %q", e1.ContentType, annals.ContentTypeBinary)
	}
	if string(e0.Data) != `{"a":1}` || string(e0.Metadata) != `{"m":1}` || string(e1.Data) != "\x01\x02" {
		t.Errorf("data or metadata not kept: %+v %+v", e0, e1)
	}
	if e1.ID != id {
		t.Errorf("given id %v replaced by %v", id, e1.ID)
	}
	for _, e := range []annals.Event{e0, e2} {
		if e.ID.Version() != 7 {
			t.Errorf("generated id %v has version %d, want 7", e.ID, e.ID.Version())
		}
	}
	if e0.ID == e2.ID {
		t.Errorf("generated ids are equal: %v", e0.ID)
	}
	wantUpdates := []StreamUpdate{{Stream: "order-1", State: StreamState{Exists: true, LastRevision: 2, LastPosition: 9}}}
	checkUpdates(t, p.Updates, wantUpdates)
	want := annals.AppendResult{NextExpected: annals.Exact(2), FirstPosition: 7, LastPosition: 9}
	if p.Result != want {
		t.Errorf("Result = %+v, want %+v", p.Result, want)
	}
}

func checkUpdates(t *testing.T, got, want []StreamUpdate) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("updates = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPlanAppendExistingStream(t *testing.T) {
	v := newFakeView()
	v.states["order-1"] = stLive // last revision 4
	p := PlanOp(v, &Op{Kind: OpAppend, Stream: "order-1", Expected: annals.Exact(4), Events: events("A", "B")}, 11, planNow)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	checkEvents(t, p.Events, []annals.Event{
		{Stream: "order-1", Type: "A", Revision: 5, Position: 11},
		{Stream: "order-1", Type: "B", Revision: 6, Position: 12},
	})
	checkUpdates(t, p.Updates, []StreamUpdate{{Stream: "order-1", State: StreamState{Exists: true, LastRevision: 6, LastPosition: 12}}})
	want := annals.AppendResult{NextExpected: annals.Exact(6), FirstPosition: 11, LastPosition: 12}
	if p.Result != want {
		t.Errorf("Result = %+v, want %+v", p.Result, want)
	}
}

func TestPlanAppendSoftDeleted(t *testing.T) {
	for _, expected := range []annals.ExpectedRevision{annals.Any, annals.NoStream, annals.Exact(4)} {
		t.Run(expected.String(), func(t *testing.T) {
			v := newFakeView()
			v.states["order-1"] = stSoftDeleted // last revision 4
			v.states["$$order-1"] = StreamState{Exists: true, LastRevision: 1, LastPosition: 11}
			v.metadata["order-1"] = annals.StreamMetadata{MaxCount: 10, TruncateBefore: annals.TruncateBeforeDeleted}
			p := PlanOp(v, &Op{Kind: OpAppend, Stream: "order-1", Expected: expected, Events: events("A", "B")}, 12, planNow)
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			checkEvents(t, p.Events, []annals.Event{
				{Stream: "$$order-1", Type: annals.EventTypeMetadata, Revision: 2, Position: 12},
				{Stream: "order-1", Type: "A", Revision: 5, Position: 13},
				{Stream: "order-1", Type: "B", Revision: 6, Position: 14},
			})
			md := metadataOf(t, p.Events[0])
			if md.TruncateBefore != 5 {
				t.Errorf("TruncateBefore = %d, want 5 (old last revision + 1)", md.TruncateBefore)
			}
			if md.MaxCount != 10 {
				t.Errorf("MaxCount = %d, want 10 (other metadata kept)", md.MaxCount)
			}
			checkUpdates(t, p.Updates, []StreamUpdate{
				{Stream: "$$order-1", State: StreamState{Exists: true, LastRevision: 2, LastPosition: 12}},
				{Stream: "order-1", State: StreamState{Exists: true, LastRevision: 6, LastPosition: 14}},
			})
			want := annals.AppendResult{NextExpected: annals.Exact(6), FirstPosition: 13, LastPosition: 14}
			if p.Result != want {
				t.Errorf("Result = %+v, want %+v", p.Result, want)
			}
		})
	}
}

func TestPlanAppendNoEvents(t *testing.T) {
	tests := []struct {
		name     string
		state    StreamState
		expected annals.ExpectedRevision
		want     annals.ExpectedRevision
	}{
		{"missing", stMissing, annals.NoStream, annals.NoStream},
		{"live", stLive, annals.Exact(4), annals.Exact(4)},
		{"live any", stLive, annals.Any, annals.Exact(4)},
		{"soft-deleted", stSoftDeleted, annals.NoStream, annals.NoStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeView()
			v.states["s"] = tt.state
			p := PlanOp(v, &Op{Kind: OpAppend, Stream: "s", Expected: tt.expected}, 20, planNow)
			if p.Err != nil || p.Duplicate || len(p.Events) != 0 || len(p.Updates) != 0 {
				t.Fatalf("PlanOp = %+v, want nothing to write", p)
			}
			want := annals.AppendResult{NextExpected: tt.want}
			if p.Result != want {
				t.Errorf("Result = %+v, want %+v", p.Result, want)
			}
		})
	}
}

func TestPlanAppendRejected(t *testing.T) {
	a := uuid.New()
	tests := []struct {
		name     string
		state    StreamState
		expected annals.ExpectedRevision
		recorded map[uuid.UUID]Recorded
		events   []annals.EventData
		want     error
	}{
		{"wrong expected", stLive, annals.Exact(3), nil, events("A"), annals.ErrWrongExpectedRevision},
		{"wrong expected, no events", stLive, annals.NoStream, nil, nil, annals.ErrWrongExpectedRevision},
		{"tombstoned", stTombstoned, annals.Any, nil, events("A"), annals.ErrStreamDeleted},
		{"duplicate id", stLive, annals.Exact(4), map[uuid.UUID]Recorded{a: {Found: true, Stream: "s", Revision: 0, Position: 1}},
			[]annals.EventData{{ID: a, Type: "A"}}, annals.ErrDuplicateEventID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeView()
			v.states["s"] = tt.state
			for id, r := range tt.recorded {
				v.recorded[id] = r
			}
			p := PlanOp(v, &Op{Kind: OpAppend, Stream: "s", Expected: tt.expected, Events: tt.events}, 20, planNow)
			if !errors.Is(p.Err, tt.want) {
				t.Fatalf("err = %v, want %v", p.Err, tt.want)
			}
			if p.Duplicate || len(p.Events) != 0 || len(p.Updates) != 0 || p.Result != (annals.AppendResult{}) {
				t.Errorf("rejected plan carries writes: %+v", p)
			}
		})
	}
}

func TestPlanAppendRetry(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	v := newFakeView()
	v.states["s"] = StreamState{Exists: true, LastRevision: 3, LastPosition: 9}
	v.recorded[a] = Recorded{Found: true, Stream: "s", Revision: 2, Position: 6}
	v.recorded[b] = Recorded{Found: true, Stream: "s", Revision: 3, Position: 9}
	p := PlanOp(v, &Op{Kind: OpAppend, Stream: "s", Expected: annals.Exact(1),
		Events: []annals.EventData{{ID: a, Type: "A"}, {ID: b, Type: "B"}}}, 10, planNow)
	if p.Err != nil || !p.Duplicate || len(p.Events) != 0 || len(p.Updates) != 0 {
		t.Fatalf("PlanOp = %+v, want a duplicate with nothing to write", p)
	}
	want := annals.AppendResult{NextExpected: annals.Exact(3), FirstPosition: 6, LastPosition: 9}
	if p.Result != want {
		t.Errorf("Result = %+v, want %+v", p.Result, want)
	}
}

func TestPlanDelete(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		v := newFakeView()
		v.states["s"] = stLive // last revision 4, position 10
		v.metadata["s"] = annals.StreamMetadata{MaxCount: 3}
		p := PlanOp(v, &Op{Kind: OpDelete, Stream: "s", Expected: annals.Exact(4)}, 15, planNow)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		checkEvents(t, p.Events, []annals.Event{{Stream: "$$s", Type: annals.EventTypeMetadata, Revision: 0, Position: 15}})
		md := metadataOf(t, p.Events[0])
		if md.TruncateBefore != annals.TruncateBeforeDeleted || md.MaxCount != 3 {
			t.Errorf("metadata = %+v, want TruncateBefore %d and MaxCount 3", md, annals.TruncateBeforeDeleted)
		}
		checkUpdates(t, p.Updates, []StreamUpdate{
			{Stream: "$$s", State: StreamState{Exists: true, LastRevision: 0, LastPosition: 15}},
			{Stream: "s", State: StreamState{Exists: true, LastRevision: 4, LastPosition: 15, SoftDeleted: true}},
		})
		if p.Result != (annals.AppendResult{LastPosition: 15}) {
			t.Errorf("Result = %+v, want LastPosition 15", p.Result)
		}
	})
	for _, tt := range []struct {
		name  string
		state StreamState
	}{{"metadata only", stMissing}, {"soft-deleted", stSoftDeleted}} {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeView()
			v.states["s"] = tt.state
			v.states["$$s"] = StreamState{Exists: true, LastPosition: 3}
			p := PlanOp(v, &Op{Kind: OpDelete, Stream: "s", Expected: annals.Any}, 15, planNow)
			if p.Err != nil || len(p.Events) != 0 || len(p.Updates) != 0 || p.Result != (annals.AppendResult{}) {
				t.Fatalf("PlanOp = %+v, want nothing to write", p)
			}
		})
	}
	for _, tt := range []struct {
		name     string
		state    StreamState
		expected annals.ExpectedRevision
		want     error
	}{
		{"wrong expected", stLive, annals.Exact(3), annals.ErrWrongExpectedRevision},
		{"missing, stream exists", stMissing, annals.StreamExists, annals.ErrWrongExpectedRevision},
		{"never existed, any", stMissing, annals.Any, annals.ErrWrongExpectedRevision},
		{"never existed, no stream", stMissing, annals.NoStream, annals.ErrWrongExpectedRevision},
		{"tombstoned", stTombstoned, annals.Any, annals.ErrStreamDeleted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeView()
			v.states["s"] = tt.state
			p := PlanOp(v, &Op{Kind: OpDelete, Stream: "s", Expected: tt.expected}, 15, planNow)
			if !errors.Is(p.Err, tt.want) || len(p.Events) != 0 {
				t.Fatalf("PlanOp = %+v, want error %v", p, tt.want)
			}
		})
	}
}

func TestPlanTombstone(t *testing.T) {
	tests := []struct {
		name  string
		state StreamState
	}{{"live", stLive}, {"missing", stMissing}, {"soft-deleted", stSoftDeleted}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeView()
			v.states["s"] = tt.state
			p := PlanOp(v, &Op{Kind: OpTombstone, Stream: "s", Expected: annals.Any}, 30, planNow)
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			checkEvents(t, p.Events, []annals.Event{
				{Stream: "s", Type: annals.EventTypeStreamDeleted, Revision: annals.RevisionTombstone, Position: 30},
			})
			ts := tt.state
			ts.Tombstoned = true
			ts.LastPosition = 30
			checkUpdates(t, p.Updates, []StreamUpdate{{Stream: "s", State: ts}})
			if p.Result != (annals.AppendResult{LastPosition: 30}) {
				t.Errorf("Result = %+v, want LastPosition 30", p.Result)
			}
		})
	}
	t.Run("wrong expected", func(t *testing.T) {
		v := newFakeView()
		v.states["s"] = stLive
		p := PlanOp(v, &Op{Kind: OpTombstone, Stream: "s", Expected: annals.NoStream}, 30, planNow)
		if !errors.Is(p.Err, annals.ErrWrongExpectedRevision) || len(p.Events) != 0 {
			t.Fatalf("PlanOp = %+v, want a wrong expected revision", p)
		}
	})
	t.Run("twice", func(t *testing.T) {
		v := newFakeView()
		v.states["s"] = stTombstoned
		p := PlanOp(v, &Op{Kind: OpTombstone, Stream: "s", Expected: annals.Any}, 30, planNow)
		if !errors.Is(p.Err, annals.ErrStreamDeleted) || len(p.Events) != 0 {
			t.Fatalf("PlanOp = %+v, want ErrStreamDeleted", p)
		}
	})
}

func TestPlanSetMetadata(t *testing.T) {
	v := newFakeView()
	v.states["$$s"] = StreamState{Exists: true, LastRevision: 0, LastPosition: 2}
	op, err := MetadataOp("s", annals.Exact(0), annals.StreamMetadata{MaxCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if op.Kind != OpSetMetadata || op.Stream != "$$s" || op.Expected != annals.Exact(0) || len(op.Events) != 1 {
		t.Fatalf("MetadataOp = %+v", op)
	}
	p := PlanOp(v, op, 5, planNow)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	checkEvents(t, p.Events, []annals.Event{{Stream: "$$s", Type: annals.EventTypeMetadata, Revision: 1, Position: 5}})
	if md := metadataOf(t, p.Events[0]); md.MaxCount != 2 {
		t.Errorf("MaxCount = %d, want 2", md.MaxCount)
	}
	want := annals.AppendResult{NextExpected: annals.Exact(1), FirstPosition: 5, LastPosition: 5}
	if p.Result != want {
		t.Errorf("Result = %+v, want %+v", p.Result, want)
	}
}

func TestPlanViewError(t *testing.T) {
	boom := errors.New("boom")
	ops := []*Op{
		{Kind: OpAppend, Stream: "s", Events: events("A")},
		{Kind: OpDelete, Stream: "s"},
		{Kind: OpTombstone, Stream: "s"},
	}
	for _, op := range ops {
		v := newFakeView()
		v.err = boom
		if p := PlanOp(v, op, 1, planNow); !errors.Is(p.Err, boom) || len(p.Events) != 0 {
			t.Errorf("op %d: PlanOp = %+v, want the view's error", op.Kind, p)
		}
	}
}

func TestValidate(t *testing.T) {
	def := annals.Limits{}.WithDefaults()
	sys := def
	sys.AllowSystemStreams = true
	mdOp := func(stream string) *Op {
		op, err := MetadataOp(stream, annals.Any, annals.StreamMetadata{MaxCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	metaEvent := annals.EventData{Type: annals.EventTypeMetadata, Data: []byte(`{"$maxCount":1}`)}
	tests := []struct {
		name   string
		limits annals.Limits
		op     *Op
		ok     bool
		field  string // of the InvalidInputError, when not ok
	}{
		{"append", def, &Op{Kind: OpAppend, Stream: "order-1", Events: events("A")}, true, ""},
		{"append no events", def, &Op{Kind: OpAppend, Stream: "order-1"}, true, ""},
		{"append to $all", sys, &Op{Kind: OpAppend, Stream: annals.AllStream, Events: events("A")}, false, "stream"},
		{"append system stream", def, &Op{Kind: OpAppend, Stream: "$system", Events: events("A")}, false, "stream"},
		{"append system stream allowed", sys, &Op{Kind: OpAppend, Stream: "$system", Events: events("A")}, true, ""},
		{"append bad event", def, &Op{Kind: OpAppend, Stream: "s", Events: events("")}, false, "event[0].type"},

		{"set metadata", def, mdOp("order-1"), true, ""},
		{"set metadata allowed", sys, mdOp("order-1"), true, ""},
		{"set metadata of a system stream", def, mdOp("$system"), true, ""},
		{"set metadata, bad stream name", def, mdOp("bad\x01name"), false, "stream"},
		{"set metadata, bad data", def, &Op{Kind: OpSetMetadata, Stream: "$$s",
			Events: []annals.EventData{{Type: annals.EventTypeMetadata, Data: []byte(`{"$maxCount":-1}`)}}}, false, "event[0].data"},
		{"set metadata, wrong type", def, &Op{Kind: OpSetMetadata, Stream: "$$s",
			Events: []annals.EventData{{Type: "Other", Data: []byte(`{}`)}}}, false, "event[0].type"},

		{"append to metastream", def, &Op{Kind: OpAppend, Stream: "$$s", Events: []annals.EventData{metaEvent}}, false, "stream"},
		{"append metadata to metastream allowed", sys, &Op{Kind: OpAppend, Stream: "$$s", Events: []annals.EventData{metaEvent}}, true, ""},
		{"append non-metadata to metastream", sys, &Op{Kind: OpAppend, Stream: "$$s", Events: events("A")}, false, "event[0].type"},
		{"append bad $acl to metastream", sys, &Op{Kind: OpAppend, Stream: "$$s",
			Events: []annals.EventData{{Type: annals.EventTypeMetadata, Data: []byte(`{"$acl":{"$w":7}}`)}}}, false, "metadata.$acl.$w"},
		{"append unknown $acl key to metastream", sys, &Op{Kind: OpAppend, Stream: "$$s",
			Events: []annals.EventData{{Type: annals.EventTypeMetadata, Data: []byte(`{"$acl":{"$write":"a"}}`)}}}, false, "metadata.$acl"},
		{"append good $acl to metastream", sys, &Op{Kind: OpAppend, Stream: "$$s",
			Events: []annals.EventData{{Type: annals.EventTypeMetadata, Data: []byte(`{"$acl":{"$w":["a","b"],"$r":"$all"}}`)}}}, true, ""},
		{"append disguised metastream", sys, &Op{Kind: OpAppend, Stream: "$$order-\u202Efdp.exe", Events: []annals.EventData{metaEvent}}, false, "stream"},
		{"append mixed to metastream", sys, &Op{Kind: OpAppend, Stream: "$$s",
			Events: []annals.EventData{metaEvent, {Type: "A", Data: []byte(`{}`)}}}, false, "event[1].type"},

		{"delete", def, &Op{Kind: OpDelete, Stream: "s"}, true, ""},
		{"delete metastream", def, &Op{Kind: OpDelete, Stream: "$$s"}, false, "stream"},
		{"delete metastream allowed", sys, &Op{Kind: OpDelete, Stream: "$$s"}, false, "stream"},
		{"tombstone metastream allowed", sys, &Op{Kind: OpTombstone, Stream: "$$s"}, false, "stream"},
		{"tombstone $all", sys, &Op{Kind: OpTombstone, Stream: annals.AllStream}, false, "stream"},
		{"delete empty name", def, &Op{Kind: OpDelete, Stream: ""}, false, "stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.limits, tt.op)
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ie *annals.InvalidInputError
			if !errors.As(err, &ie) || !errors.Is(err, annals.ErrInvalidInput) {
				t.Fatalf("Validate = %v (%T), want an InvalidInputError", err, err)
			}
			if ie.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", ie.Field, tt.field, err)
			}
		})
	}
	t.Run("delete metastream reason", func(t *testing.T) {
		err := Validate(sys, &Op{Kind: OpDelete, Stream: "$$s"})
		if err == nil || !strings.Contains(err.Error(), "metastream") {
			t.Errorf("Validate = %v, want a metastream error", err)
		}
	})
}

func TestValidateMetastreamLimits(t *testing.T) {
	l := annals.Limits{MaxEventSizeBytes: 100, AllowSystemStreams: true}.WithDefaults()
	big := annals.StreamMetadata{Custom: map[string]json.RawMessage{"note": json.RawMessage(`"` + strings.Repeat("x", 200) + `"`)}}
	op, err := MetadataOp("s", annals.Any, big)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(l, op); !errors.Is(err, annals.ErrInvalidInput) {
		t.Fatalf("oversized metadata: got %v, want ErrInvalidInput", err)
	}
	id := uuid.New()
	dup := &Op{Kind: OpAppend, Stream: "$$s", Events: []annals.EventData{
		{ID: id, Type: annals.EventTypeMetadata, Data: []byte(`{}`)},
		{ID: id, Type: annals.EventTypeMetadata, Data: []byte(`{}`)},
	}}
	if err := Validate(l, dup); !errors.Is(err, annals.ErrInvalidInput) {
		t.Fatalf("repeated id in a metastream append: got %v, want ErrInvalidInput", err)
	}
}
