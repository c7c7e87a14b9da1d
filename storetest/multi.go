package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/annals/annals"
)

func exerciseMulti(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"Atomic", testMultiAtomic},
		{"Interleaved", testMultiInterleaved},
		{"FailingCheckWritesNothing", testMultiFailingCheck},
		{"EveryViolation", testMultiEveryViolation},
		{"CheckStates", testMultiCheckStates},
		{"TombstonedWritten", testMultiTombstonedWritten},
		{"RevivesDeleted", testMultiRevivesDeleted},
		{"Retry", testMultiRetry},
		{"RetryPartial", testMultiRetryPartial},
		{"BadInput", testMultiBadInput},
		{"Race", testMultiRace},
	})
}

func rec(stream, typ string) annals.Record { return annals.Record{Stream: stream, Event: ev(typ)} }

func mustMulti(t *testing.T, ctx context.Context, s annals.Store, m annals.MultiAppend) annals.MultiAppendResult {
	t.Helper()
	r, err := s.AppendMulti(ctx, m)
	if err != nil {
		t.Fatalf("AppendMulti(%d records, %d checks): %v", len(m.Records), len(m.Checks), err)
	}
	return r
}

// sameRecords checks that events are the records, in order.
func sameRecords(t *testing.T, events []annals.Event, records []annals.Record) {
	t.Helper()
	if len(events) != len(records) {
		t.Fatalf("%d events, want %d", len(events), len(records))
	}
	for i, e := range events {
		if e.ID != records[i].Event.ID || e.Stream != records[i].Stream || e.Type != records[i].Event.Type {
			t.Fatalf("event %d is %s/%s %s, want %s/%s %s", i, e.Stream, e.Type, e.ID,
				records[i].Stream, records[i].Event.Type, records[i].Event.ID)
		}
	}
}

func testMultiAtomic(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "before", annals.NoStream, ev("Before"))
	m := annals.Streams(
		annals.StreamAppend{Stream: "order-1", Expected: annals.NoStream, Events: []annals.EventData{ev("Placed"), ev("Paid")}},
		annals.StreamAppend{Stream: "stock-7", Expected: annals.NoStream, Events: []annals.EventData{ev("Reserved")}},
	)
	r := mustMulti(t, ctx, s, m)
	if r.FirstPosition != 2 || r.LastPosition != 4 {
		t.Fatalf("positions %d..%d, want 2..4", r.FirstPosition, r.LastPosition)
	}
	want := []annals.StreamResult{
		{Stream: "order-1", NextExpected: annals.Exact(1), LastPosition: 3},
		{Stream: "stock-7", NextExpected: annals.Exact(0), LastPosition: 4},
	}
	if !slices.Equal(r.Streams, want) {
		t.Fatalf("streams %+v, want %+v", r.Streams, want)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{From: 2})
	sameRecords(t, all, m.Records)
	if got := revisions(mustReadStream(t, ctx, s, "order-1", annals.ReadStreamOptions{})); !slices.Equal(got, []uint64{0, 1}) {
		t.Fatalf("order-1 revisions %v", got)
	}
}

func testMultiInterleaved(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "a", annals.NoStream, ev("Seed"))
	m := annals.MultiAppend{Records: []annals.Record{rec("a", "A1"), rec("b", "B0"), rec("a", "A2"), rec("b", "B1"), rec("a", "A3")}}
	r := mustMulti(t, ctx, s, m)
	if r.Streams[0].NextExpected != annals.Exact(3) || r.Streams[1].NextExpected != annals.Exact(1) {
		t.Fatalf("streams %+v, want a at 3, b at 1", r.Streams)
	}
	sameRecords(t, mustReadAll(t, ctx, s, annals.ReadAllOptions{From: r.FirstPosition}), m.Records)
	if got := revisions(mustReadStream(t, ctx, s, "a", annals.ReadStreamOptions{})); !slices.Equal(got, []uint64{0, 1, 2, 3}) {
		t.Fatalf("a revisions %v", got)
	}
}

// consistency returns err's violations, failing unless it is a
// *annals.ConsistencyError matching ErrWrongExpectedRevision.
func consistency(t *testing.T, err error) []annals.Violation {
	t.Helper()
	var ce *annals.ConsistencyError
	if !errors.As(err, &ce) || !errors.Is(err, annals.ErrWrongExpectedRevision) {
		t.Fatalf("error %v, want a *annals.ConsistencyError", err)
	}
	return ce.Violations
}

func testMultiFailingCheck(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "checked", annals.NoStream, evs(3, "E")...)
	before := countAll(t, ctx, s)
	_, err := s.AppendMulti(ctx, annals.MultiAppend{
		Records: []annals.Record{rec("w1", "W"), rec("w2", "W"), rec("checked", "W")},
		Checks:  []annals.StreamCheck{{Stream: "checked", Expected: annals.Exact(5)}},
	})
	v := consistency(t, err)
	want := annals.Violation{Check: 0, Stream: "checked", Expected: annals.Exact(5), Actual: annals.Exact(2), Written: true}
	if len(v) != 1 || v[0] != want {
		t.Fatalf("violations %+v, want [%+v]", v, want)
	}
	unchanged(t, s, before)
	wantReadErr(t, ctx, s, "w1", annals.ErrStreamNotFound)
	wantReadErr(t, ctx, s, "w2", annals.ErrStreamNotFound)
}

func testMultiEveryViolation(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "deleted", annals.NoStream, evs(3, "E")...)
	if _, err := s.Delete(ctx, "deleted", annals.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, ctx, s, "tombstoned", annals.NoStream, ev("E"))
	if _, err := s.Tombstone(ctx, "tombstoned", annals.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, ctx, s, "fine", annals.NoStream, evs(2, "E")...)
	_, err := s.AppendMulti(ctx, annals.MultiAppend{
		Records: []annals.Record{rec("w", "W")},
		Checks: []annals.StreamCheck{
			{Stream: "deleted", Expected: annals.StreamExists},
			{Stream: "fine", Expected: annals.Exact(1)},
			{Stream: "tombstoned", Expected: annals.StreamExists},
			{Stream: "missing", Expected: annals.Exact(10)},
		},
	})
	want := []annals.Violation{
		{Check: 0, Stream: "deleted", Expected: annals.StreamExists, Actual: annals.Exact(2), Deleted: true},
		{Check: 2, Stream: "tombstoned", Expected: annals.StreamExists, Actual: annals.Exact(0), Tombstoned: true},
		{Check: 3, Stream: "missing", Expected: annals.Exact(10), Actual: annals.NoStream},
	}
	got := consistency(t, err)
	if remoteLike(s) {
		// The protocol reports -5 and -6 for deleted and tombstoned
		// streams, without their revision.
		for i := range want {
			if want[i].Deleted || want[i].Tombstoned {
				want[i].Actual = annals.NoStream
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations\n%+v\nwant\n%+v", got, want)
	}
	wantReadErr(t, ctx, s, "w", annals.ErrStreamNotFound)
}

// remoteLike says whether s reports a violation's state as the KurrentDB
// protocol carries it.
func remoteLike(s annals.Store) bool { return limitationsOf(s).PropertyMetadata }

// testMultiCheckStates runs KurrentDB's table of StreamStateCheck
// outcomes: every expected state against every state of a stream, for a
// stream the append writes and for one it only checks.
func testMultiCheckStates(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	states := []string{"missing", "at2", "deleted2", "tombstoned"}
	for _, st := range states {
		if st == "missing" {
			continue
		}
		mustAppend(t, ctx, s, st, annals.NoStream, evs(3, "E")...)
		switch st {
		case "deleted2":
			if _, err := s.Delete(ctx, st, annals.Any); err != nil {
				t.Fatal(err)
			}
		case "tombstoned":
			if _, err := s.Tombstone(ctx, st, annals.Any); err != nil {
				t.Fatal(err)
			}
		}
	}
	// holds[expected][state] for a check-only stream; a written stream
	// differs only where tombstoned (it never holds).
	holds := map[string]map[string]bool{
		"no stream":     {"missing": true, "at2": false, "deleted2": true, "tombstoned": true},
		"stream exists": {"missing": false, "at2": true, "deleted2": false, "tombstoned": false},
		"2":             {"missing": false, "at2": true, "deleted2": true, "tombstoned": false},
		"5":             {"missing": false, "at2": false, "deleted2": false, "tombstoned": false},
		"deleted":       {"missing": false, "at2": false, "deleted2": true, "tombstoned": false},
		"tombstoned":    {"missing": false, "at2": false, "deleted2": false, "tombstoned": true},
	}
	expectations := []annals.ExpectedRevision{annals.NoStream, annals.StreamExists, annals.Exact(2), annals.Exact(5), annals.Deleted, annals.Tombstoned}
	for _, expected := range expectations {
		for _, st := range states {
			for _, written := range []bool{false, true} {
				want := holds[expected.String()][st] && !(written && st == "tombstoned")
				checkState(t, ctx, s, st, expected, written, want)
			}
		}
	}
}

// checkState appends one record with a check of expected on a stream in
// state, and fails unless it passes as want says. written: the record goes
// to the checked stream, a fresh copy of state (a passing write changes
// it); otherwise to a fresh stream.
func checkState(t *testing.T, ctx context.Context, s annals.Store, stream string, expected annals.ExpectedRevision, written, want bool) {
	t.Helper()
	target := fmt.Sprintf("target-%s-%s-%v", stream, expected, written)
	m := annals.MultiAppend{Records: []annals.Record{rec(target, "W")}}
	if written {
		// A passing write changes the stream: give it a fresh copy in the
		// same state (written the same way) and write that.
		copyState(t, ctx, s, stream, target)
		m.Checks = []annals.StreamCheck{{Stream: target, Expected: expected}}
	} else {
		m.Checks = []annals.StreamCheck{{Stream: stream, Expected: expected}}
	}
	_, err := s.AppendMulti(ctx, m)
	if got := err == nil; got != want {
		t.Errorf("check %s on a %s stream (written %v): passed %v, want %v (error %v)", expected, stream, written, got, want, err)
	}
}

func copyState(t *testing.T, ctx context.Context, s annals.Store, state, stream string) {
	t.Helper()
	if state == "missing" {
		return
	}
	mustAppend(t, ctx, s, stream, annals.NoStream, evs(3, "E")...)
	var err error
	switch state {
	case "deleted2":
		_, err = s.Delete(ctx, stream, annals.Any)
	case "tombstoned":
		_, err = s.Tombstone(ctx, stream, annals.Any)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func testMultiTombstonedWritten(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "gone", annals.NoStream, ev("E"))
	if _, err := s.Tombstone(ctx, "gone", annals.Any); err != nil {
		t.Fatal(err)
	}
	before := countAll(t, ctx, s)
	_, err := s.AppendMulti(ctx, annals.MultiAppend{
		Records: []annals.Record{rec("fresh", "W"), rec("gone", "W")},
		Checks:  []annals.StreamCheck{{Stream: "fresh", Expected: annals.NoStream}},
	})
	if !errors.Is(err, annals.ErrStreamDeleted) {
		t.Fatalf("error %v, want ErrStreamDeleted", err)
	}
	v := consistency(t, err)
	if len(v) != 1 || v[0].Stream != "gone" || v[0].Check != 1 || !v[0].Tombstoned || !v[0].Written || !v[0].Expected.IsAny() {
		t.Fatalf("violations %+v, want gone at check 1 (after the checks), tombstoned, written, expected any", v)
	}
	unchanged(t, s, before)
}

func testMultiRevivesDeleted(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "cart", annals.NoStream, evs(3, "Old")...)
	if _, err := s.Delete(ctx, "cart", annals.Exact(2)); err != nil {
		t.Fatal(err)
	}
	m := annals.MultiAppend{
		Records: []annals.Record{rec("cart", "New"), rec("other", "New")},
		Checks:  []annals.StreamCheck{{Stream: "cart", Expected: annals.Deleted}},
	}
	r := mustMulti(t, ctx, s, m)
	if r.Streams[0].NextExpected != annals.Exact(3) {
		t.Fatalf("cart at %v, want 3", r.Streams[0].NextExpected)
	}
	got := mustReadStream(t, ctx, s, "cart", annals.ReadStreamOptions{})
	if len(got) != 1 || got[0].Revision != 3 || got[0].Type != "New" {
		t.Fatalf("cart reads %v revisions %v, want only the new event at 3", len(got), revisions(got))
	}
	sameRecords(t, mustReadAll(t, ctx, s, annals.ReadAllOptions{From: r.FirstPosition}), m.Records)
}

func testMultiRetry(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	m := annals.MultiAppend{
		Records: []annals.Record{rec("x", "X"), rec("y", "Y"), rec("x", "X2")},
		Checks:  []annals.StreamCheck{{Stream: "x", Expected: annals.NoStream}, {Stream: "y", Expected: annals.NoStream}},
	}
	first := mustMulti(t, ctx, s, m)
	before := countAll(t, ctx, s)
	again := mustMulti(t, ctx, s, m)
	if !slices.Equal(first.Streams, again.Streams) || first.FirstPosition != again.FirstPosition || first.LastPosition != again.LastPosition {
		t.Fatalf("retry answered %+v, want the original %+v", again, first)
	}
	unchanged(t, s, before)
	// Exact checks naming the place before the records are a retry too.
	m2 := annals.MultiAppend{
		Records: []annals.Record{rec("x", "X3"), rec("y", "Y2")},
		Checks:  []annals.StreamCheck{{Stream: "x", Expected: annals.Exact(1)}, {Stream: "y", Expected: annals.Exact(0)}},
	}
	r2 := mustMulti(t, ctx, s, m2)
	if again2 := mustMulti(t, ctx, s, m2); !slices.Equal(again2.Streams, r2.Streams) {
		t.Fatalf("retry answered %+v, want %+v", again2, r2)
	}
}

func testMultiRetryPartial(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	m := annals.MultiAppend{Records: []annals.Record{rec("p", "P"), rec("q", "Q")}}
	mustMulti(t, ctx, s, m)
	before := countAll(t, ctx, s)
	// One id recorded, one new: not a retry, and nothing written.
	m.Records = append(m.Records, rec("q", "Q2"))
	if _, err := s.AppendMulti(ctx, m); !errors.Is(err, annals.ErrDuplicateEventID) {
		t.Fatalf("partial retry: error %v, want ErrDuplicateEventID", err)
	}
	unchanged(t, s, before)
}

func testMultiBadInput(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "seed", annals.NoStream, ev("Seed"))
	before := countAll(t, ctx, s)
	tooMany := make([]annals.Record, annals.DefaultMaxAppendStreams+1)
	for i := range tooMany {
		tooMany[i] = rec(fmt.Sprintf("s-%d", i), "E")
	}
	manyChecks := make([]annals.StreamCheck, annals.DefaultMaxAppendChecks+1)
	for i := range manyChecks {
		manyChecks[i] = annals.StreamCheck{Stream: fmt.Sprintf("c-%d", i), Expected: annals.NoStream}
	}
	dupID := rec("d", "E")
	cases := []struct {
		name string
		m    annals.MultiAppend
	}{
		{"NoRecords", annals.MultiAppend{Checks: []annals.StreamCheck{{Stream: "seed", Expected: annals.StreamExists}}}},
		{"EmptyStream", annals.MultiAppend{Records: []annals.Record{rec("ok", "E"), rec("", "E")}}},
		{"AllStream", annals.MultiAppend{Records: []annals.Record{rec(annals.AllStream, "E")}}},
		{"Metastream", annals.MultiAppend{Records: []annals.Record{{Stream: "$$seed", Event: annals.EventData{Type: annals.EventTypeMetadata, Data: []byte(`{}`)}}}}},
		{"EmptyType", annals.MultiAppend{Records: []annals.Record{rec("ok", "E"), {Stream: "ok", Event: annals.EventData{Data: []byte(`{}`)}}}}},
		{"CheckAny", annals.MultiAppend{Records: []annals.Record{rec("ok", "E")}, Checks: []annals.StreamCheck{{Stream: "seed", Expected: annals.Any}}}},
		{"CheckEmptyStream", annals.MultiAppend{Records: []annals.Record{rec("ok", "E")}, Checks: []annals.StreamCheck{{Stream: "", Expected: annals.NoStream}}}},
		{"CheckTwice", annals.MultiAppend{Records: []annals.Record{rec("ok", "E")}, Checks: []annals.StreamCheck{{Stream: "seed", Expected: annals.StreamExists}, {Stream: "seed", Expected: annals.Exact(0)}}}},
		{"SameIDTwiceInStream", annals.MultiAppend{Records: []annals.Record{dupID, dupID}}},
		{"TooManyStreams", annals.MultiAppend{Records: tooMany}},
		{"TooManyChecks", annals.MultiAppend{Records: []annals.Record{rec("ok", "E")}, Checks: manyChecks}},
	}
	for _, tc := range cases {
		if _, err := s.AppendMulti(ctx, tc.m); !errors.Is(err, annals.ErrInvalidInput) {
			t.Errorf("%s: error %v, want ErrInvalidInput", tc.name, err)
		}
	}
	unchanged(t, s, before)
	wantReadErr(t, ctx, s, "ok", annals.ErrStreamNotFound)
}

// testMultiRace races 64 writers, each appending to two of 8 streams at the
// revisions it read, retrying on conflict. Each record says which revision
// of its stream its writer read; replaying the log checks that every
// revision had exactly one winner (the record at r read r-1) and that each
// append's two records sit together in $all.
func testMultiRace(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const writers, appendsEach, streams = 64, 3, 8
	errs := make(chan error, writers)
	for w := range writers {
		go func() { errs <- raceWriter(ctx, s, w, appendsEach, streams) }()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != writers*appendsEach*2 {
		t.Fatalf("%d events in $all, want %d", len(all), writers*appendsEach*2)
	}
	for i := 0; i < len(all); i += 2 {
		a, b := all[i], all[i+1]
		if string(a.Metadata) != string(b.Metadata) || a.Stream == b.Stream {
			t.Fatalf("positions %d and %d are not one append's two records: %s/%s, %s/%s", a.Position, b.Position, a.Stream, a.Metadata, b.Stream, b.Metadata)
		}
	}
	for _, e := range all {
		var read int64
		if _, err := fmt.Sscanf(string(e.Data), `{"read":%d}`, &read); err != nil {
			t.Fatalf("event %d data %s: %v", e.Position, e.Data, err)
		}
		if read != int64(e.Revision)-1 {
			t.Fatalf("%s@%d was written by a writer that read revision %d: a lost update", e.Stream, e.Revision, read)
		}
	}
}

func raceWriter(ctx context.Context, s annals.Store, w, appends, streams int) error {
	for n := range appends {
		a := fmt.Sprintf("race-%d", (w+n)%streams)
		b := fmt.Sprintf("race-%d", (w+n+1+w%3)%streams)
		for {
			m := annals.MultiAppend{}
			for _, stream := range []string{a, b} {
				head, expected, err := headOf(ctx, s, stream)
				if err != nil {
					return err
				}
				e := evData("Raced", fmt.Sprintf(`{"read":%d}`, head))
				e.Metadata = []byte(fmt.Sprintf(`{"append":"%d-%d"}`, w, n))
				m.Records = append(m.Records, annals.Record{Stream: stream, Event: e})
				m.Checks = append(m.Checks, annals.StreamCheck{Stream: stream, Expected: expected})
			}
			_, err := s.AppendMulti(ctx, m)
			if err == nil {
				break
			}
			if !errors.Is(err, annals.ErrWrongExpectedRevision) {
				return fmt.Errorf("writer %d: %w", w, err)
			}
		}
	}
	return nil
}

// headOf returns a stream's last revision (-1 for none) and the
// expectation that names it.
func headOf(ctx context.Context, s annals.Store, stream string) (int64, annals.ExpectedRevision, error) {
	for e, err := range s.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return 0, annals.Any, err
		}
		return int64(e.Revision), annals.Exact(e.Revision), nil
	}
	return -1, annals.NoStream, nil
}
