package storetest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/annals/annals"
)

func exerciseRead(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"EmptyStore", testReadEmptyStore},
		{"StreamForwards", testReadStreamForwards},
		{"StreamBackwards", testReadStreamBackwards},
		{"StreamNotFound", testReadStreamNotFound},
		{"AllForwards", testReadAllForwards},
		{"AllBackwards", testReadAllBackwards},
		{"BreakEarly", testReadBreakEarly},
		{"LongStream", testReadLongStream},
	})
}

func testReadEmptyStore(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	for _, opts := range []annals.ReadAllOptions{
		{}, {Direction: annals.Backwards, From: annals.End}, {From: 5, Limit: 3},
	} {
		if got := mustReadAll(t, ctx, s, opts); len(got) != 0 {
			t.Fatalf("ReadAll(%+v) on an empty store: %d events", opts, len(got))
		}
	}
}

// tenEvents appends revisions 0..9 to stream, interleaved with another
// stream, and returns the events of stream as read.
func tenEvents(t *testing.T, s annals.Store, stream string) []annals.Event {
	t.Helper()
	ctx := testContext(t)
	mustAppend(t, ctx, s, stream, annals.NoStream, evs(4, "Step")...)
	mustAppend(t, ctx, s, "noise-1", annals.Any, evs(2, "Noise")...)
	mustAppend(t, ctx, s, stream, annals.Exact(3), evs(6, "Step")...)
	got := mustReadStream(t, ctx, s, stream, annals.ReadStreamOptions{})
	wantRevisions(t, stream, got, seq(0, 9))
	return got
}

func testReadStreamForwards(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	all := tenEvents(t, s, "fwd-1")
	cases := []struct {
		opts annals.ReadStreamOptions
		want []uint64
	}{
		{annals.ReadStreamOptions{}, seq(0, 9)},
		{annals.ReadStreamOptions{From: annals.Start}, seq(0, 9)},
		{annals.ReadStreamOptions{From: 4}, seq(4, 9)},
		{annals.ReadStreamOptions{From: 9}, []uint64{9}},
		{annals.ReadStreamOptions{Limit: 3}, seq(0, 2)},
		{annals.ReadStreamOptions{From: 4, Limit: 3}, seq(4, 6)},
		{annals.ReadStreamOptions{From: 8, Limit: 5}, seq(8, 9)},
		{annals.ReadStreamOptions{From: 10}, nil},
		{annals.ReadStreamOptions{From: annals.End}, nil},
	}
	for _, c := range cases {
		got := mustReadStream(t, ctx, s, "fwd-1", c.opts)
		wantRevisions(t, fmt.Sprintf("ReadStream(%+v)", c.opts), got, c.want)
		for _, e := range got {
			if e.ID != all[e.Revision].ID || e.Position != all[e.Revision].Position {
				t.Fatalf("ReadStream(%+v): revision %d is not the event read from Start", c.opts, e.Revision)
			}
		}
	}
}

func testReadStreamBackwards(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	all := tenEvents(t, s, "bwd-1")
	b := annals.Backwards
	cases := []struct {
		opts annals.ReadStreamOptions
		want []uint64
	}{
		{annals.ReadStreamOptions{Direction: b, From: annals.End}, rseq(9, 0)},
		{annals.ReadStreamOptions{Direction: b, From: 4}, rseq(4, 0)},
		{annals.ReadStreamOptions{Direction: b, From: annals.Start}, []uint64{0}},
		{annals.ReadStreamOptions{Direction: b, From: annals.End, Limit: 3}, rseq(9, 7)},
		{annals.ReadStreamOptions{Direction: b, From: 4, Limit: 2}, rseq(4, 3)},
		{annals.ReadStreamOptions{Direction: b, From: 1, Limit: 5}, rseq(1, 0)},
		{annals.ReadStreamOptions{Direction: b, From: 100}, rseq(9, 0)},
	}
	for _, c := range cases {
		got := mustReadStream(t, ctx, s, "bwd-1", c.opts)
		wantRevisions(t, fmt.Sprintf("ReadStream(%+v)", c.opts), got, c.want)
		for _, e := range got {
			if e.ID != all[e.Revision].ID {
				t.Fatalf("ReadStream(%+v): revision %d is not the event read forwards", c.opts, e.Revision)
			}
		}
	}
}

func testReadStreamNotFound(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	wantReadErr(t, ctx, s, "missing-1", annals.ErrStreamNotFound)
	mustAppend(t, ctx, s, "present-1", annals.Any, ev("A"))
	wantReadErr(t, ctx, s, "missing-1", annals.ErrStreamNotFound)
	for _, opts := range []annals.ReadStreamOptions{
		{Direction: annals.Backwards, From: annals.End},
		{From: 3, Limit: 1},
	} {
		got, err := readStream(ctx, s, "missing-1", opts)
		wantErrIs(t, fmt.Sprintf("ReadStream(missing, %+v)", opts), err, annals.ErrStreamNotFound)
		if len(got) != 0 {
			t.Fatalf("ReadStream(missing): %d events", len(got))
		}
	}
}

// tenAll appends 10 events to three streams; positions 1..10.
func tenAll(t *testing.T, s annals.Store) []annals.Event {
	t.Helper()
	ctx := testContext(t)
	for i, stream := range []string{"x-1", "x-2", "x-3", "x-1", "x-2"} {
		mustAppend(t, ctx, s, stream, annals.Any, evs(2, fmt.Sprintf("T%d", i))...)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	wantPositions(t, "ReadAll", all, seq(1, 10))
	return all
}

func testReadAllForwards(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	all := tenAll(t, s)
	cases := []struct {
		opts annals.ReadAllOptions
		want []uint64
	}{
		{annals.ReadAllOptions{From: annals.Start}, seq(1, 10)},
		{annals.ReadAllOptions{From: 1}, seq(1, 10)},
		{annals.ReadAllOptions{From: 4}, seq(4, 10)},
		{annals.ReadAllOptions{Limit: 3}, seq(1, 3)},
		{annals.ReadAllOptions{From: 4, Limit: 3}, seq(4, 6)},
		{annals.ReadAllOptions{From: 9, Limit: 5}, seq(9, 10)},
		{annals.ReadAllOptions{From: 11}, nil},
		{annals.ReadAllOptions{From: annals.End}, nil},
	}
	for _, c := range cases {
		got := mustReadAll(t, ctx, s, c.opts)
		wantPositions(t, fmt.Sprintf("ReadAll(%+v)", c.opts), got, c.want)
		for _, e := range got {
			if e.ID != all[e.Position-1].ID {
				t.Fatalf("ReadAll(%+v): position %d is not the event read from Start", c.opts, e.Position)
			}
		}
	}
}

func testReadAllBackwards(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	all := tenAll(t, s)
	b := annals.Backwards
	cases := []struct {
		opts annals.ReadAllOptions
		want []uint64
	}{
		{annals.ReadAllOptions{Direction: b, From: annals.End}, rseq(10, 1)},
		{annals.ReadAllOptions{Direction: b, From: 4}, rseq(4, 1)},
		{annals.ReadAllOptions{Direction: b, From: 1}, []uint64{1}},
		{annals.ReadAllOptions{Direction: b, From: annals.Start}, nil},
		{annals.ReadAllOptions{Direction: b, From: annals.End, Limit: 3}, rseq(10, 8)},
		{annals.ReadAllOptions{Direction: b, From: 4, Limit: 2}, rseq(4, 3)},
		{annals.ReadAllOptions{Direction: b, From: 100, Limit: 2}, rseq(10, 9)},
	}
	for _, c := range cases {
		got := mustReadAll(t, ctx, s, c.opts)
		wantPositions(t, fmt.Sprintf("ReadAll(%+v)", c.opts), got, c.want)
		for _, e := range got {
			if e.ID != all[e.Position-1].ID {
				t.Fatalf("ReadAll(%+v): position %d is not the event read forwards", c.opts, e.Position)
			}
		}
	}
}

func testReadBreakEarly(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "brk-1", annals.NoStream, evs(600, "Many")...)
	for range 3 {
		n := 0
		for _, err := range s.ReadStream(ctx, "brk-1", annals.ReadStreamOptions{}) {
			if err != nil {
				t.Fatalf("ReadStream: %v", err)
			}
			if n++; n == 2 {
				break
			}
		}
		n = 0
		for _, err := range s.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End}) {
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if n++; n == 300 {
				break
			}
		}
	}
	// The store still works after abandoned reads.
	res := mustAppend(t, ctx, s, "brk-1", annals.Exact(599), ev("After"))
	if res.LastPosition != 601 {
		t.Fatalf("append after abandoned reads: position %d, want 601", res.LastPosition)
	}
	if n := len(mustReadStream(t, ctx, s, "brk-1", annals.ReadStreamOptions{})); n != 601 {
		t.Fatalf("ReadStream after abandoned reads: %d events, want 601", n)
	}
}

func testReadLongStream(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const n, batch = 5000, 1000
	var want []annals.EventData
	for i := 0; i < n; i += batch {
		in := evs(batch, "Long")
		exp := annals.NoStream
		if i > 0 {
			exp = annals.Exact(annals.Revision(i - 1))
		}
		mustAppend(t, ctx, s, "long-1", exp, in...)
		want = append(want, in...)
	}
	fwd := mustReadStream(t, ctx, s, "long-1", annals.ReadStreamOptions{})
	wantRevisions(t, "forwards", fwd, seq(0, n-1))
	if !slices.Equal(ids(fwd), dataIDs(want)) {
		t.Fatalf("forwards: the events are not the appended ones in order")
	}
	bwd := mustReadStream(t, ctx, s, "long-1", annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End})
	wantRevisions(t, "backwards", bwd, rseq(n-1, 0))
	mid := mustReadStream(t, ctx, s, "long-1", annals.ReadStreamOptions{From: 250, Limit: 300})
	wantRevisions(t, "From 250 Limit 300", mid, seq(250, 549))
	midb := mustReadStream(t, ctx, s, "long-1", annals.ReadStreamOptions{Direction: annals.Backwards, From: 4000, Limit: 600})
	wantRevisions(t, "backwards From 4000 Limit 600", midb, rseq(4000, 3401))
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	wantPositions(t, "ReadAll", all, seq(1, n))
}

func exerciseFilter(t *testing.T, newStore func(t *testing.T) annals.Store) {
	type filterCase struct {
		name   string
		filter *annals.Filter
		match  func(e annals.Event) bool
	}
	cases := []filterCase{
		{"StreamPrefix", annals.StreamPrefixFilter("order-"),
			func(e annals.Event) bool { return strings.HasPrefix(e.Stream, "order-") }},
		{"StreamPrefixMany", annals.StreamPrefixFilter("customer", "order-2"),
			func(e annals.Event) bool {
				return strings.HasPrefix(e.Stream, "customer") || strings.HasPrefix(e.Stream, "order-2")
			}},
		{"EventTypePrefix", annals.EventTypePrefixFilter("Order"),
			func(e annals.Event) bool { return strings.HasPrefix(e.Type, "Order") }},
		{"StreamRegex", annals.StreamRegexFilter(regexp.MustCompile(`^order-\d+$`)),
			func(e annals.Event) bool { return e.Stream == "order-1" || e.Stream == "order-2" }},
		{"EventTypeRegex", annals.EventTypeRegexFilter(regexp.MustCompile(`Shipped$`)),
			func(e annals.Event) bool { return e.Type == "OrderShipped" }},
		{"Category", annals.CategoryFilter("order"),
			func(e annals.Event) bool {
				return e.Stream == "order-1" || e.Stream == "order-2" || e.Stream == "order-2-x"
			}},
		{"ExcludeSystemEvents", annals.ExcludeSystemEventsFilter(),
			func(e annals.Event) bool { return !strings.HasPrefix(e.Type, "$") }},
	}
	var tests []storeTest
	for _, c := range cases {
		tests = append(tests, storeTest{c.name, func(t *testing.T, s annals.Store) {
			testFilter(t, s, c.filter, c.match)
		}})
	}
	tests = append(tests,
		storeTest{"LimitCountsMatches", testFilterLimit},
		storeTest{"CategoryExact", testFilterCategoryExact},
	)
	runAll(t, newStore, tests)
}

// filterFixture fills s with user and system events in several streams and
// returns $all.
func filterFixture(t *testing.T, s annals.Store) []annals.Event {
	t.Helper()
	ctx := testContext(t)
	for _, a := range []struct{ stream, typ string }{
		{"order-1", "OrderPlaced"},
		{"orders-1", "OrderPlaced"},
		{"customer-1", "CustomerRegistered"},
		{"order-2", "OrderPlaced"},
		{"order", "OrderPlaced"},
		{"order-1", "OrderShipped"},
		{"ordering", "Ordered"},
		{"order-2-x", "OrderPlaced"},
		{"temp-1", "Temp"},
		{"customer-2", "CustomerRegistered"},
		{"order-2", "OrderShipped"},
	} {
		mustAppend(t, ctx, s, a.stream, annals.Any, ev(a.typ), ev(a.typ))
	}
	if _, err := s.SetStreamMetadata(ctx, "order-1", annals.Any, annals.StreamMetadata{MaxCount: 100}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	if _, err := s.Tombstone(ctx, "temp-1", annals.Any); err != nil {
		t.Fatalf("Tombstone: %v", err)
	}
	mustAppend(t, ctx, s, "customer-1", annals.Any, ev("CustomerMoved"))
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	system := 0
	for _, e := range all {
		if strings.HasPrefix(e.Type, "$") {
			system++
		}
	}
	if system < 2 {
		t.Fatalf("$all has %d system events, want at least the $metadata and $streamDeleted events", system)
	}
	return all
}

func testFilter(t *testing.T, s annals.Store, f *annals.Filter, match func(annals.Event) bool) {
	ctx := testContext(t)
	all := filterFixture(t, s)
	var want []annals.Event
	for _, e := range all {
		if match(e) {
			want = append(want, e)
		}
	}
	if len(want) == 0 || len(want) == len(all) {
		t.Fatalf("bad fixture: the filter should match some events, not all")
	}
	got := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: f})
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ReadAll filtered: positions %v, want %v", positions(got), positions(want))
	}
	got = mustReadAll(t, ctx, s, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Filter: f})
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if !slices.Equal(ids(got), ids(rev)) {
		t.Fatalf("ReadAll filtered backwards: positions %v, want %v", positions(got), positions(rev))
	}
	// From a position in the middle.
	from := want[len(want)/2].Position
	got = mustReadAll(t, ctx, s, annals.ReadAllOptions{From: from, Filter: f})
	if !slices.Equal(ids(got), ids(want[len(want)/2:])) {
		t.Fatalf("ReadAll filtered From %d: positions %v, want %v", from, positions(got), positions(want[len(want)/2:]))
	}
}

func testFilterLimit(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	all := filterFixture(t, s)
	var cat []annals.Event
	for _, e := range all {
		if annals.Category(e.Stream) == "order" && e.Stream != "order" {
			cat = append(cat, e)
		}
	}
	f := annals.CategoryFilter("order")
	got := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: f, Limit: 3})
	if !slices.Equal(ids(got), ids(cat[:3])) {
		t.Fatalf("Limit 3 forwards: positions %v, want %v", positions(got), positions(cat[:3]))
	}
	got = mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: f, Limit: 3, Direction: annals.Backwards, From: annals.End})
	want := slices.Clone(cat[len(cat)-3:])
	slices.Reverse(want)
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("Limit 3 backwards: positions %v, want %v", positions(got), positions(want))
	}
	got = mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: annals.EventTypePrefixFilter("NoSuchType"), Limit: 1})
	if len(got) != 0 {
		t.Fatalf("a filter that matches nothing yielded %d events", len(got))
	}
}

func testFilterCategoryExact(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	filterFixture(t, s)
	got := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: annals.CategoryFilter("order")})
	streams := map[string]bool{}
	for _, e := range got {
		streams[e.Stream] = true
	}
	for _, in := range []string{"order-1", "order-2", "order-2-x"} {
		if !streams[in] {
			t.Errorf("CategoryFilter(order) missed stream %q", in)
		}
	}
	for _, out := range []string{"orders-1", "order", "ordering", "customer-1", annals.MetastreamOf("order-1")} {
		if streams[out] {
			t.Errorf("CategoryFilter(order) matched stream %q", out)
		}
	}
}
