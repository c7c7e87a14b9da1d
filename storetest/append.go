package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

func exerciseEvents(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"FieldsRoundTrip", testEventFieldsRoundTrip},
		{"GeneratedIDs", testEventGeneratedIDs},
		{"RecordedTime", testEventRecordedTime},
		{"RevisionsPerStream", testEventRevisionsPerStream},
		{"PositionsGaplessAcrossStreams", testEventPositionsGapless},
	})
}

func sameEvent(t *testing.T, what string, got annals.Event, stream string, want annals.EventData) {
	t.Helper()
	wantCT := want.ContentType
	if wantCT == "" {
		wantCT = annals.ContentTypeJSON
	}
	if got.ID != want.ID || got.Stream != stream || got.Type != want.Type || got.ContentType != wantCT ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Metadata, want.Metadata) {
		t.Fatalf("%s: got event {ID: %s, Stream: %q, Type: %q, ContentType: %q, Data: %q, Metadata: %q},\n"+
			"want {ID: %s, Stream: %q, Type: %q, ContentType: %q, Data: %q, Metadata: %q}",
			what, got.ID, got.Stream, got.Type, got.ContentType, got.Data, got.Metadata,
			want.ID, stream, want.Type, wantCT, want.Data, want.Metadata)
	}
}

func testEventFieldsRoundTrip(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := []annals.EventData{
		{ID: uuid.New(), Type: "OrderPlaced", Data: []byte(`{"total":42}`), Metadata: []byte(`{"correlationId":"c-1"}`)},
		{ID: uuid.New(), Type: "Blob", ContentType: annals.ContentTypeBinary, Data: []byte{0, 1, 2, 0xff, 0xfe}, Metadata: []byte{9, 8, 7}},
		{ID: uuid.New(), Type: "Note", ContentType: "text/plain; charset=utf-8", Data: []byte("héllo wörld")},
		{ID: uuid.New(), Type: "Empty", ContentType: annals.ContentTypeJSON},
	}
	if limitationsOf(s).JSONOrBinaryOnly {
		in[2].ContentType = annals.ContentTypeBinary
	}
	res := mustAppend(t, ctx, s, "order-1", annals.NoStream, in...)
	if res.NextExpected != annals.Exact(3) || res.FirstPosition != 1 || res.LastPosition != 4 {
		t.Fatalf("AppendResult %+v, want {NextExpected: 3, FirstPosition: 1, LastPosition: 4}", res)
	}

	got := mustReadStream(t, ctx, s, "order-1", annals.ReadStreamOptions{})
	if len(got) != len(in) {
		t.Fatalf("ReadStream: %d events, want %d", len(got), len(in))
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != len(in) {
		t.Fatalf("ReadAll: %d events, want %d", len(all), len(in))
	}
	for i := range in {
		sameEvent(t, fmt.Sprintf("ReadStream event %d", i), got[i], "order-1", in[i])
		sameEvent(t, fmt.Sprintf("ReadAll event %d", i), all[i], "order-1", in[i])
		if got[i].Revision != annals.Revision(i) || got[i].Position != annals.Position(i+1) {
			t.Fatalf("event %d: revision %d position %d, want %d and %d", i, got[i].Revision, got[i].Position, i, i+1)
		}
		if all[i].Revision != got[i].Revision || all[i].Position != got[i].Position || !all[i].Recorded.Equal(got[i].Recorded) {
			t.Fatalf("event %d differs between ReadAll (%+v) and ReadStream (%+v)", i, all[i], got[i])
		}
	}
}

func testEventGeneratedIDs(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := []annals.EventData{{Type: "A"}, {Type: "B"}, {Type: "C"}}
	mustAppend(t, ctx, s, "gen-1", annals.Any, in...)
	mustAppend(t, ctx, s, "gen-2", annals.Any, annals.EventData{Type: "D"})
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != 4 {
		t.Fatalf("ReadAll: %d events, want 4", len(all))
	}
	seen := map[uuid.UUID]bool{}
	for _, e := range all {
		if e.ID == (uuid.UUID{}) {
			t.Fatalf("event at position %d has the zero id; the store must generate one", e.Position)
		}
		if seen[e.ID] {
			t.Fatalf("generated id %s given to two events", e.ID)
		}
		seen[e.ID] = true
	}
	got := mustReadStream(t, ctx, s, "gen-1", annals.ReadStreamOptions{})
	if !slices.Equal(ids(got), ids(all[:3])) {
		t.Fatalf("ReadStream ids %v differ from ReadAll ids %v", ids(got), ids(all[:3]))
	}
}

func testEventRecordedTime(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	before := time.Now()
	for i := range 6 {
		mustAppend(t, ctx, s, fmt.Sprintf("time-%d", i%3), annals.Any, evs(1+i%2, "Ticked")...)
		time.Sleep(2 * time.Millisecond)
	}
	after := time.Now()
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != 9 {
		t.Fatalf("ReadAll: %d events, want 9", len(all))
	}
	var prev time.Time
	for _, e := range all {
		if e.Recorded.IsZero() {
			t.Fatalf("position %d: Recorded is zero", e.Position)
		}
		if e.Recorded.Location() != time.UTC {
			t.Fatalf("position %d: Recorded %v is in %v, want UTC", e.Position, e.Recorded, e.Recorded.Location())
		}
		// Generous: the store's clock may be another machine's.
		if e.Recorded.Before(before.Add(-time.Hour)) || e.Recorded.After(after.Add(time.Hour)) {
			t.Fatalf("position %d: Recorded %v is nowhere near the test's run (%v to %v)", e.Position, e.Recorded, before, after)
		}
		if e.Recorded.Before(prev) {
			t.Fatalf("position %d: Recorded %v is before the previous event's %v", e.Position, e.Recorded, prev)
		}
		prev = e.Recorded
	}
	for _, e := range mustReadStream(t, ctx, s, "time-0", annals.ReadStreamOptions{}) {
		if e.Recorded.Location() != time.UTC {
			t.Fatalf("ReadStream revision %d: Recorded in %v, want UTC", e.Revision, e.Recorded.Location())
		}
	}
}

func testEventRevisionsPerStream(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	counts := map[string]int{}
	for i, stream := range []string{"a-1", "b-1", "a-1", "c-1", "b-1", "a-1", "c-1", "a-1"} {
		n := 1 + i%3
		res := mustAppend(t, ctx, s, stream, annals.Any, evs(n, "Happened")...)
		counts[stream] += n
		if res.NextExpected != annals.Exact(annals.Revision(counts[stream]-1)) {
			t.Fatalf("append %d to %s: NextExpected %v, want %d", i, stream, res.NextExpected, counts[stream]-1)
		}
	}
	for stream, n := range counts {
		got := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
		wantRevisions(t, "ReadStream "+stream, got, seq(0, uint64(n-1)))
		for _, e := range got {
			if e.Stream != stream {
				t.Fatalf("ReadStream %s yielded an event of stream %q", stream, e.Stream)
			}
		}
	}
}

func testEventPositionsGapless(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	var want []uuid.UUID
	var last annals.Position
	for i, stream := range []string{"p-1", "p-2", "p-3", "p-1", "p-2", "p-1"} {
		in := evs(1+i%4, "Moved")
		res := mustAppend(t, ctx, s, stream, annals.Any, in...)
		if res.FirstPosition != last+1 || res.LastPosition != last+annals.Position(len(in)) {
			t.Fatalf("append %d: positions %d..%d, want %d..%d", i, res.FirstPosition, res.LastPosition, last+1, last+annals.Position(len(in)))
		}
		last = res.LastPosition
		want = append(want, dataIDs(in)...)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	wantPositions(t, "ReadAll", all, seq(1, uint64(last)))
	if !slices.Equal(ids(all), want) {
		t.Fatalf("ReadAll ids are not the appended events in append order")
	}
	// Per stream, positions increase with revisions.
	for _, stream := range []string{"p-1", "p-2", "p-3"} {
		got := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
		for i := 1; i < len(got); i++ {
			if got[i].Position <= got[i-1].Position {
				t.Fatalf("%s: revision %d at position %d, revision %d at %d", stream, got[i-1].Revision, got[i-1].Position, got[i].Revision, got[i].Position)
			}
		}
	}
}

func exerciseAppend(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"ExpectedAny", testAppendExpectedAny},
		{"ExpectedNoStream", testAppendExpectedNoStream},
		{"ExpectedStreamExists", testAppendExpectedStreamExists},
		{"ExpectedExact", testAppendExpectedExact},
		{"MultiEventAtomic", testAppendMultiEventAtomic},
		{"ZeroEventsChecksExpectation", testAppendZeroEvents},
		{"ResultChain", testAppendResultChain},
	})
}

// unchanged checks that a failed write left the log as it was.
func unchanged(t *testing.T, s annals.Store, before int) {
	t.Helper()
	if after := countAll(t, testContext(t), s); after != before {
		t.Fatalf("the failed call wrote: $all had %d events, now %d", before, after)
	}
}

func testAppendExpectedAny(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	res := mustAppend(t, ctx, s, "any-1", annals.Any, ev("A"))
	if res.NextExpected != annals.Exact(0) {
		t.Fatalf("Any on a new stream: NextExpected %v, want 0", res.NextExpected)
	}
	res = mustAppend(t, ctx, s, "any-1", annals.Any, ev("B"), ev("C"))
	if res.NextExpected != annals.Exact(2) {
		t.Fatalf("Any on an existing stream: NextExpected %v, want 2", res.NextExpected)
	}
	wantRevisions(t, "any-1", mustReadStream(t, ctx, s, "any-1", annals.ReadStreamOptions{}), seq(0, 2))
}

func testAppendExpectedNoStream(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	res := mustAppend(t, ctx, s, "ns-1", annals.NoStream, ev("A"), ev("B"))
	if res.NextExpected != annals.Exact(1) {
		t.Fatalf("NoStream on a new stream: NextExpected %v, want 1", res.NextExpected)
	}
	before := countAll(t, ctx, s)
	_, err := s.Append(ctx, "ns-1", annals.NoStream, ev("C"))
	wantWrongExpected(t, err, "ns-1", annals.NoStream, annals.Exact(1))
	unchanged(t, s, before)
	wantRevisions(t, "ns-1", mustReadStream(t, ctx, s, "ns-1", annals.ReadStreamOptions{}), seq(0, 1))
}

func testAppendExpectedStreamExists(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	_, err := s.Append(ctx, "se-1", annals.StreamExists, ev("A"))
	wantWrongExpected(t, err, "se-1", annals.StreamExists, annals.NoStream)
	unchanged(t, s, 0)
	wantReadErr(t, ctx, s, "se-1", annals.ErrStreamNotFound)

	mustAppend(t, ctx, s, "se-1", annals.NoStream, ev("A"))
	res := mustAppend(t, ctx, s, "se-1", annals.StreamExists, ev("B"))
	if res.NextExpected != annals.Exact(1) {
		t.Fatalf("StreamExists: NextExpected %v, want 1", res.NextExpected)
	}
}

func testAppendExpectedExact(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	_, err := s.Append(ctx, "ex-1", annals.Exact(0), ev("A"))
	wantWrongExpected(t, err, "ex-1", annals.Exact(0), annals.NoStream)
	unchanged(t, s, 0)

	mustAppend(t, ctx, s, "ex-1", annals.NoStream, ev("A"), ev("B"), ev("C"))
	for _, r := range []annals.Revision{0, 1, 3, 4, 1000} {
		before := countAll(t, ctx, s)
		_, err := s.Append(ctx, "ex-1", annals.Exact(r), ev("X"))
		wantWrongExpected(t, err, "ex-1", annals.Exact(r), annals.Exact(2))
		unchanged(t, s, before)
	}
	res := mustAppend(t, ctx, s, "ex-1", annals.Exact(2), ev("D"))
	if res.NextExpected != annals.Exact(3) || res.FirstPosition != 4 || res.LastPosition != 4 {
		t.Fatalf("Exact(2): result %+v, want {3, 4, 4}", res)
	}
	got := mustReadStream(t, ctx, s, "ex-1", annals.ReadStreamOptions{})
	wantRevisions(t, "ex-1", got, seq(0, 3))
	if got[3].Type != "D" {
		t.Fatalf("revision 3 has type %q, want D", got[3].Type)
	}
}

func testAppendMultiEventAtomic(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "other-1", annals.Any, ev("Noise"))
	in := evs(7, "Batched")
	res := mustAppend(t, ctx, s, "multi-1", annals.NoStream, in...)
	if res.NextExpected != annals.Exact(6) || res.FirstPosition != 2 || res.LastPosition != 8 {
		t.Fatalf("result %+v, want {6, 2, 8}", res)
	}
	mustAppend(t, ctx, s, "other-1", annals.Any, ev("Noise"))
	got := mustReadStream(t, ctx, s, "multi-1", annals.ReadStreamOptions{})
	wantRevisions(t, "multi-1", got, seq(0, 6))
	wantPositions(t, "multi-1", got, seq(2, 8))
	if !slices.Equal(ids(got), dataIDs(in)) {
		t.Fatalf("multi-1: events are not the appended ones in order")
	}

	// A rejected multi-event append writes none of its events.
	before := countAll(t, ctx, s)
	_, err := s.Append(ctx, "multi-1", annals.Exact(3), evs(5, "Rejected")...)
	wantWrongExpected(t, err, "multi-1", annals.Exact(3), annals.Exact(6))
	unchanged(t, s, before)
	_, err = s.Append(ctx, "multi-1", annals.Exact(6), ev("Fine"), ev("Fine"), annals.EventData{Type: ""})
	wantErrIs(t, "append with one invalid event", err, annals.ErrInvalidInput)
	unchanged(t, s, before)
	wantRevisions(t, "multi-1 after rejections", mustReadStream(t, ctx, s, "multi-1", annals.ReadStreamOptions{}), seq(0, 6))
}

func testAppendZeroEvents(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	// On a missing stream.
	for _, exp := range []annals.ExpectedRevision{annals.Any, annals.NoStream} {
		res, err := s.Append(ctx, "zero-1", exp)
		if err != nil {
			t.Fatalf("zero events, %v, missing stream: %v", exp, err)
		}
		if res != (annals.AppendResult{NextExpected: annals.NoStream}) {
			t.Fatalf("zero events, %v, missing stream: result %+v, want {NextExpected: NoStream}", exp, res)
		}
	}
	_, err := s.Append(ctx, "zero-1", annals.StreamExists)
	wantWrongExpected(t, err, "zero-1", annals.StreamExists, annals.NoStream)
	_, err = s.Append(ctx, "zero-1", annals.Exact(0))
	wantWrongExpected(t, err, "zero-1", annals.Exact(0), annals.NoStream)
	unchanged(t, s, 0)
	wantReadErr(t, ctx, s, "zero-1", annals.ErrStreamNotFound)

	// On an existing stream.
	mustAppend(t, ctx, s, "zero-1", annals.NoStream, ev("A"), ev("B"))
	for _, exp := range []annals.ExpectedRevision{annals.Any, annals.StreamExists, annals.Exact(1)} {
		res, err := s.Append(ctx, "zero-1", exp)
		if err != nil {
			t.Fatalf("zero events, %v, existing stream: %v", exp, err)
		}
		if res != (annals.AppendResult{NextExpected: annals.Exact(1)}) {
			t.Fatalf("zero events, %v, existing stream: result %+v, want {NextExpected: 1}", exp, res)
		}
	}
	for _, exp := range []annals.ExpectedRevision{annals.NoStream, annals.Exact(0), annals.Exact(2)} {
		_, err := s.Append(ctx, "zero-1", exp)
		wantWrongExpected(t, err, "zero-1", exp, annals.Exact(1))
	}
	unchanged(t, s, 2)
	wantRevisions(t, "zero-1", mustReadStream(t, ctx, s, "zero-1", annals.ReadStreamOptions{}), seq(0, 1))
}

func testAppendResultChain(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	next := annals.NoStream
	var last annals.Position
	for i := range 5 {
		res, err := s.Append(ctx, "chain-1", next, evs(i+1, "Linked")...)
		if err != nil {
			t.Fatalf("append %d with the previous NextExpected %v: %v", i, next, err)
		}
		if res.FirstPosition != last+1 || res.LastPosition != last+annals.Position(i+1) {
			t.Fatalf("append %d: positions %d..%d, want %d..%d", i, res.FirstPosition, res.LastPosition, last+1, last+annals.Position(i+1))
		}
		r, ok := res.NextExpected.Revision()
		if !ok || r != annals.Revision(res.LastPosition-1) {
			t.Fatalf("append %d: NextExpected %v, want %d", i, res.NextExpected, res.LastPosition-1)
		}
		next, last = res.NextExpected, res.LastPosition
	}
	// The stale expectation now fails.
	_, err := s.Append(ctx, "chain-1", annals.Exact(9), ev("Stale"))
	if !errors.Is(err, annals.ErrWrongExpectedRevision) {
		t.Fatalf("stale expectation: error %v, want ErrWrongExpectedRevision", err)
	}
}

func exerciseIdempotency(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"RetryExact", func(t *testing.T, s annals.Store) {
			ctx := testContext(t)
			mustAppend(t, ctx, s, "idem-1", annals.NoStream, ev("First"))
			testRetry(t, s, "idem-1", annals.Exact(0))
		}},
		{"RetryNoStream", func(t *testing.T, s annals.Store) { testRetry(t, s, "idem-1", annals.NoStream) }},
		{"RetryAny", func(t *testing.T, s annals.Store) {
			ctx := testContext(t)
			mustAppend(t, ctx, s, "idem-1", annals.NoStream, ev("First"))
			testRetry(t, s, "idem-1", annals.Any)
		}},
		{"RetryAfterStreamMovedOn", testRetryAfterMovedOn},
		{"SameIDsOtherStream", testSameIDsOtherStream},
		{"SameIDSameStreamElsewhere", testSameIDSameStreamElsewhere},
		{"PartiallyMatchingIDs", testDuplicatePartial},
		{"DuplicateIDsWithinAppend", testDuplicateWithinAppend},
		{"GeneratedIDsAreNotRetries", testGeneratedIDsNotRetries},
	})
}

// testRetry appends three events with expected, then retries the same
// append twice: same result, nothing written.
func testRetry(t *testing.T, s annals.Store, stream string, expected annals.ExpectedRevision) {
	ctx := testContext(t)
	in := evs(3, "Retried")
	first := mustAppend(t, ctx, s, stream, expected, in...)
	before := countAll(t, ctx, s)
	streamBefore := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
	for i := range 2 {
		again, err := s.Append(ctx, stream, expected, in...)
		if err != nil {
			t.Fatalf("retry %d with %v: %v", i, expected, err)
		}
		if again != first {
			t.Fatalf("retry %d with %v: result %+v, want the original %+v", i, expected, again, first)
		}
	}
	unchanged(t, s, before)
	got := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
	if !slices.Equal(ids(got), ids(streamBefore)) {
		t.Fatalf("the retries changed the stream")
	}
}

func testRetryAfterMovedOn(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := evs(2, "Retried")
	first := mustAppend(t, ctx, s, "idem-2", annals.NoStream, in...)
	mustAppend(t, ctx, s, "idem-2", annals.Exact(1), ev("Later"))
	before := countAll(t, ctx, s)
	// The retry names the place before the run, so it is recognised even
	// though the stream has moved on since.
	for _, exp := range []annals.ExpectedRevision{annals.NoStream, annals.Any} {
		again, err := s.Append(ctx, "idem-2", exp, in...)
		if err != nil {
			t.Fatalf("retry with %v after the stream moved on: %v", exp, err)
		}
		if again != first {
			t.Fatalf("retry with %v: result %+v, want %+v", exp, again, first)
		}
	}
	unchanged(t, s, before)
	wantRevisions(t, "idem-2", mustReadStream(t, ctx, s, "idem-2", annals.ReadStreamOptions{}), seq(0, 2))
}

// Idempotency is per stream, as in KurrentDB: ids recorded in one stream
// are new to another.
func testSameIDsOtherStream(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := evs(2, "Once")
	first := mustAppend(t, ctx, s, "dup-1", annals.NoStream, in...)
	for i, exp := range []annals.ExpectedRevision{annals.NoStream, annals.Any} {
		stream := fmt.Sprintf("dup-%d", i+2)
		res := mustAppend(t, ctx, s, stream, exp, in...)
		if res.FirstPosition <= first.LastPosition {
			t.Fatalf("the same ids in %s (%v): result %+v, want new events after %+v", stream, exp, res, first)
		}
		got := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
		if !slices.Equal(ids(got), dataIDs(in)) {
			t.Fatalf("%s holds ids %v, want %v", stream, ids(got), dataIDs(in))
		}
		// A retry there is recognised there.
		if again, err := s.Append(ctx, stream, exp, in...); err != nil || again != res {
			t.Fatalf("retry in %s: %+v, %v; want the original %+v", stream, again, err, res)
		}
	}
	if n := countAll(t, ctx, s); n != 6 {
		t.Fatalf("$all has %d events, want 6", n)
	}
}

// An id recorded in this stream, appended at another place, is refused:
// the store recognises it however old it is (package command relies on it).
func testSameIDSameStreamElsewhere(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := evs(2, "Once")
	mustAppend(t, ctx, s, "dup-1", annals.NoStream, in...)
	mustAppend(t, ctx, s, "dup-1", annals.Exact(1), ev("Later"))
	before := countAll(t, ctx, s)
	_, err := s.Append(ctx, "dup-1", annals.Exact(2), ev("New"), in[1])
	var d *annals.DuplicateEventError
	if !errors.Is(err, annals.ErrDuplicateEventID) || !errors.As(err, &d) {
		t.Fatalf("a recorded id at another place: error %v (%T), want a *DuplicateEventError", err, err)
	}
	if d.ID != in[1].ID || d.Stream != "dup-1" || d.Revision != 1 {
		t.Fatalf("DuplicateEventError{ID: %s, Stream: %q, Revision: %d}, want {%s, %q, 1}", d.ID, d.Stream, d.Revision, in[1].ID, "dup-1")
	}
	_, err = s.Append(ctx, "dup-1", annals.Exact(2), in...)
	wantErrIs(t, "the first run again at the stream's end", err, annals.ErrDuplicateEventID)
	unchanged(t, s, before)
}

func testDuplicatePartial(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := evs(2, "Once")
	mustAppend(t, ctx, s, "part-1", annals.NoStream, in...)
	before := countAll(t, ctx, s)
	cases := []struct {
		name     string
		expected annals.ExpectedRevision
		events   []annals.EventData
	}{
		{"recorded then new", annals.Exact(1), []annals.EventData{in[0], in[1], ev("New")}},
		{"recorded then new, Any", annals.Any, []annals.EventData{in[0], in[1], ev("New")}},
		{"new then recorded", annals.Exact(1), []annals.EventData{ev("New"), in[0]}},
		{"reordered", annals.NoStream, []annals.EventData{in[1], in[0]}},
		{"not the same run", annals.Exact(0), []annals.EventData{in[0], in[1]}},
	}
	for _, c := range cases {
		_, err := s.Append(ctx, "part-1", c.expected, c.events...)
		if err == nil {
			t.Fatalf("%s: append succeeded, want an error", c.name)
		}
		if !errors.Is(err, annals.ErrDuplicateEventID) && !errors.Is(err, annals.ErrWrongExpectedRevision) {
			t.Fatalf("%s: error %v, want ErrDuplicateEventID (or ErrWrongExpectedRevision)", c.name, err)
		}
		unchanged(t, s, before)
	}
	_, err := s.Append(ctx, "part-1", annals.Exact(1), in[0], in[1], ev("New"))
	wantErrIs(t, "recorded ids followed by a new one", err, annals.ErrDuplicateEventID)
	wantRevisions(t, "part-1", mustReadStream(t, ctx, s, "part-1", annals.ReadStreamOptions{}), seq(0, 1))
}

func testDuplicateWithinAppend(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	a := ev("Twice")
	_, err := s.Append(ctx, "twice-1", annals.Any, a, ev("Other"), a)
	wantErrIs(t, "the same id twice in one append", err, annals.ErrInvalidInput)
	unchanged(t, s, 0)
	wantReadErr(t, ctx, s, "twice-1", annals.ErrStreamNotFound)
}

func testGeneratedIDsNotRetries(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := []annals.EventData{{Type: "Anon", Data: []byte(`{}`)}, {Type: "Anon", Data: []byte(`{}`)}}
	mustAppend(t, ctx, s, "anon-1", annals.Any, in...)
	mustAppend(t, ctx, s, "anon-1", annals.Any, in...)
	wantRevisions(t, "anon-1", mustReadStream(t, ctx, s, "anon-1", annals.ReadStreamOptions{}), seq(0, 3))
}
