package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/annals/annals"
)

// exerciseList runs against stores that implement annals.StreamLister, an
// optional capability; the others skip it, saying so.
func exerciseList(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"Empty", testListEmpty},
		{"Prefix", testListPrefix},
		{"Paging", testListPaging},
		{"Limit", testListLimit},
		{"Heads", testListHeads},
		{"Deleted", testListDeleted},
		{"NoMetastreams", testListNoMetastreams},
		{"LikeCharactersLiteral", testListLikeCharacters},
		{"ByteOrder", testListByteOrder},
		{"BadOptions", testListBadOptions},
		{"Closed", testListClosed},
	})
}

// lister returns s as a StreamLister, or skips the subtest.
func lister(t *testing.T, s annals.Store) annals.StreamLister {
	t.Helper()
	if l, ok := s.(*limited); ok {
		s = l.Store
	}
	sl, ok := s.(annals.StreamLister)
	if !ok {
		t.Skipf("the store (%T) does not implement annals.StreamLister, an optional capability", s)
	}
	return sl
}

func mustList(t *testing.T, ctx context.Context, l annals.StreamLister, opts annals.ListStreamsOptions) []annals.StreamInfo {
	t.Helper()
	page, err := l.ListStreams(ctx, opts)
	if err != nil {
		t.Fatalf("ListStreams(%+v): %v", opts, err)
	}
	return page
}

func names(page []annals.StreamInfo) []string {
	out := make([]string, len(page))
	for i, s := range page {
		out[i] = s.Name
	}
	return out
}

func wantNames(t *testing.T, ctx context.Context, l annals.StreamLister, opts annals.ListStreamsOptions, want ...string) {
	t.Helper()
	if got := names(mustList(t, ctx, l, opts)); !slices.Equal(got, want) {
		t.Fatalf("ListStreams(%+v): %q, want %q", opts, got, want)
	}
}

// appendOne writes one event to each stream.
func appendOne(t *testing.T, ctx context.Context, s annals.Store, streams ...string) {
	t.Helper()
	for _, name := range streams {
		mustAppend(t, ctx, s, name, annals.Any, ev("Listed"))
	}
}

// listAll pages through the streams with prefix, limit at a time, until a
// page comes back shorter than the limit; it checks each page's size and
// that the cursor only moves forwards.
func listAll(t *testing.T, ctx context.Context, l annals.StreamLister, prefix string, limit int) []string {
	t.Helper()
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatalf("paging with prefix %q, limit %d, did not end", prefix, limit)
		}
		page := names(mustList(t, ctx, l, annals.ListStreamsOptions{Prefix: prefix, After: after, Limit: limit}))
		if len(page) > limit {
			t.Fatalf("a page of %d streams, limit %d", len(page), limit)
		}
		if len(page) > 0 && page[0] <= after {
			t.Fatalf("page after %q starts at %q", after, page[0])
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		after = page[len(page)-1]
	}
}

func testListEmpty(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	for _, opts := range []annals.ListStreamsOptions{{}, {Prefix: "order-"}, {After: "m", Limit: annals.MaxListStreamsLimit}} {
		if page := mustList(t, ctx, l, opts); len(page) != 0 {
			t.Fatalf("ListStreams(%+v) of an empty store: %+v, want none", opts, page)
		}
	}
}

func testListPrefix(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	appendOne(t, ctx, s, "order-2", "customer-1", "order", "orders", "ord", "order-1", "order-1-line-3", "Order-9")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order-"}, "order-1", "order-1-line-3", "order-2")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order"}, "order", "order-1", "order-1-line-3", "order-2", "orders")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order-1"}, "order-1", "order-1-line-3")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "customer-1"}, "customer-1")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "orders-"})
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "zzz"})
	wantNames(t, ctx, l, annals.ListStreamsOptions{},
		"Order-9", "customer-1", "ord", "order", "order-1", "order-1-line-3", "order-2", "orders")
	// The prefix and the cursor together.
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order", After: "order-1"}, "order-1-line-3", "order-2", "orders")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order-", After: "a"}, "order-1", "order-1-line-3", "order-2")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order-", After: "order-2"})
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "order-", After: "p"})
	// A category, as Category splits names, is the prefix up to its '-'.
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: annals.Category("customer-1") + "-"}, "customer-1")
}

func testListPaging(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	var want []string
	for i := range 23 {
		want = append(want, fmt.Sprintf("page-%02d", i))
	}
	want = append(want, "page-é", "page-Z", "page-", "pag", "paging-1", "page-\U0001F600")
	appendOne(t, ctx, s, want...)
	slices.Sort(want) // byte order
	for _, limit := range []int{1, 3, 4, 7, len(want), len(want) + 1, annals.MaxListStreamsLimit} {
		if got := listAll(t, ctx, l, "", limit); !slices.Equal(got, want) {
			t.Fatalf("paging by %d: %q\nwant %q", limit, got, want)
		}
	}
	var dash []string
	for _, n := range want {
		if strings.HasPrefix(n, "page-") {
			dash = append(dash, n)
		}
	}
	for _, limit := range []int{2, 5, len(dash)} {
		if got := listAll(t, ctx, l, "page-", limit); !slices.Equal(got, dash) {
			t.Fatalf("paging %q by %d: %q\nwant %q", "page-", limit, got, dash)
		}
	}
}

func testListLimit(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	n := annals.DefaultListStreamsLimit + 1
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("limit-%04d", i))
	}
	appendOne(t, ctx, s, want...)
	if got := names(mustList(t, ctx, l, annals.ListStreamsOptions{})); !slices.Equal(got, want[:annals.DefaultListStreamsLimit]) {
		t.Fatalf("no Limit: %d streams (%q...), want the first %d", len(got), got[:min(len(got), 3)], annals.DefaultListStreamsLimit)
	}
	if got := names(mustList(t, ctx, l, annals.ListStreamsOptions{Limit: annals.MaxListStreamsLimit})); !slices.Equal(got, want) {
		t.Fatalf("Limit %d: %d streams, want all %d", annals.MaxListStreamsLimit, len(got), n)
	}
	if got := names(mustList(t, ctx, l, annals.ListStreamsOptions{Limit: 2, After: want[50]})); !slices.Equal(got, want[51:53]) {
		t.Fatalf("Limit 2 after %q: %q, want %q", want[50], got, want[51:53])
	}
	for _, limit := range []int{annals.MaxListStreamsLimit + 1, -1} {
		page, err := l.ListStreams(ctx, annals.ListStreamsOptions{Limit: limit})
		wantErrIs(t, fmt.Sprintf("ListStreams with Limit %d", limit), err, annals.ErrInvalidInput)
		if page != nil {
			t.Fatalf("ListStreams with Limit %d: a page of %d besides the error", limit, len(page))
		}
	}
}

// wantInfo checks the listed head of one stream.
func wantInfo(t *testing.T, ctx context.Context, l annals.StreamLister, want annals.StreamInfo) {
	t.Helper()
	page := mustList(t, ctx, l, annals.ListStreamsOptions{Prefix: want.Name, Limit: 1})
	if len(page) != 1 || page[0] != want {
		t.Fatalf("ListStreams of %q: %+v, want [%+v]", want.Name, page, want)
	}
}

func testListHeads(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	a1 := mustAppend(t, ctx, s, "heads-a", annals.NoStream, evs(3, "A")...)
	b := mustAppend(t, ctx, s, "heads-b", annals.NoStream, ev("B"))
	wantInfo(t, ctx, l, annals.StreamInfo{Name: "heads-a", LastRevision: 2, LastPosition: a1.LastPosition})
	a2 := mustAppend(t, ctx, s, "heads-a", annals.Exact(2), evs(2, "A")...)
	wantInfo(t, ctx, l, annals.StreamInfo{Name: "heads-a", LastRevision: 4, LastPosition: a2.LastPosition})
	// Metadata is the metastream's change, not the stream's.
	if _, err := s.SetStreamMetadata(ctx, "heads-b", annals.Any, annals.StreamMetadata{MaxCount: 5}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	wantInfo(t, ctx, l, annals.StreamInfo{Name: "heads-b", LastRevision: 0, LastPosition: b.LastPosition})
	// The listing agrees with what a read of each stream shows.
	for _, info := range mustList(t, ctx, l, annals.ListStreamsOptions{Prefix: "heads-"}) {
		last := mustReadStream(t, ctx, s, info.Name, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1})
		if len(last) != 1 || last[0].Revision != info.LastRevision || last[0].Position != info.LastPosition {
			t.Fatalf("listed %+v; the stream's last event is %+v", info, last)
		}
	}
}

func testListDeleted(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	mustAppend(t, ctx, s, "gone-soft", annals.NoStream, evs(2, "A")...)
	mustAppend(t, ctx, s, "gone-hard", annals.NoStream, evs(3, "A")...)
	mustAppend(t, ctx, s, "gone-back", annals.NoStream, ev("A"))
	soft, err := s.Delete(ctx, "gone-soft", annals.Exact(1))
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	hard, err := s.Tombstone(ctx, "gone-hard", annals.Exact(2))
	if err != nil {
		t.Fatalf("Tombstone: %v", err)
	}
	never, err := s.Tombstone(ctx, "gone-never", annals.NoStream)
	if err != nil {
		t.Fatalf("Tombstone of a stream that never existed: %v", err)
	}
	if _, err := s.Delete(ctx, "gone-back", annals.Exact(0)); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	back := mustAppend(t, ctx, s, "gone-back", annals.Any, ev("B"))
	want := []annals.StreamInfo{
		{Name: "gone-back", LastRevision: 1, LastPosition: back.LastPosition},
		{Name: "gone-hard", LastRevision: 2, LastPosition: hard.Position, Tombstoned: true},
		{Name: "gone-never", LastPosition: never.Position, Tombstoned: true},
		{Name: "gone-soft", LastRevision: 1, LastPosition: soft.Position, Deleted: true},
	}
	if got := mustList(t, ctx, l, annals.ListStreamsOptions{Prefix: "gone-"}); !slices.Equal(got, want) {
		t.Fatalf("ListStreams: %+v\nwant %+v", got, want)
	}
}

func testListNoMetastreams(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	appendOne(t, ctx, s, "meta-1", "nometa-1")
	for _, name := range []string{"meta-1", "meta-without-events"} {
		if _, err := s.SetStreamMetadata(ctx, name, annals.Any, annals.StreamMetadata{MaxCount: 3}); err != nil {
			t.Fatalf("SetStreamMetadata(%q): %v", name, err)
		}
	}
	wantNames(t, ctx, l, annals.ListStreamsOptions{}, "meta-1", "nometa-1")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "$"})
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: annals.MetastreamOf("meta-1")})
	wantNames(t, ctx, l, annals.ListStreamsOptions{Limit: 1}, "meta-1")
	wantNames(t, ctx, l, annals.ListStreamsOptions{After: "$", Limit: 1}, "meta-1")
}

// A store that builds a pattern of the prefix (SQL's LIKE) must match its
// wildcard and escape characters literally.
func testListLikeCharacters(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	appendOne(t, ctx, s, "a%b_1", "a%b_2", "aXbY3", "a%bZ4", "ab_5", "a%b", `x\y1`, "xy2", `x\\y3`, `x\`, "100%", "1000")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "a%b_"}, "a%b_1", "a%b_2")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "a%"}, "a%b", "a%bZ4", "a%b_1", "a%b_2")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: `x\y`}, `x\y1`)
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: `x\`}, `x\`, `x\\y3`, `x\y1`)
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "100%"}, "100%")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "_"})
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "%"})
}

// Names are ordered by their bytes (UTF-8), not by any language's rules:
// upper case before lower case, accented letters after 'z'.
func testListByteOrder(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	want := []string{"Zebra", "apple", "eclair", "zoo", "éclair", "ÿ", "Ω", "日本-1", "\U0001F600"}
	shuffled := slices.Clone(want)
	slices.Reverse(shuffled)
	appendOne(t, ctx, s, shuffled...)
	if !slices.IsSorted(want) {
		t.Fatalf("the test's names are not in byte order")
	}
	wantNames(t, ctx, l, annals.ListStreamsOptions{}, want...)
	wantNames(t, ctx, l, annals.ListStreamsOptions{After: "zoo"}, want[4:]...)
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "é"}, "éclair")
	wantNames(t, ctx, l, annals.ListStreamsOptions{Prefix: "日"}, "日本-1")
	if got := listAll(t, ctx, l, "", 2); !slices.Equal(got, want) {
		t.Fatalf("paging by 2: %q, want %q", got, want)
	}
}

func testListBadOptions(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	appendOne(t, ctx, s, "bad-1")
	for _, opts := range []annals.ListStreamsOptions{
		{Prefix: "bad-\xff"},
		{Prefix: "bad\x00"},
		{After: "bad\n"},
		{Limit: -5},
	} {
		_, err := l.ListStreams(ctx, opts)
		wantErrIs(t, fmt.Sprintf("ListStreams(%+v)", opts), err, annals.ErrInvalidInput)
	}
}

func testListClosed(t *testing.T, s annals.Store) {
	l := lister(t, s)
	ctx := testContext(t)
	appendOne(t, ctx, s, "closed-1")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := l.ListStreams(ctx, annals.ListStreamsOptions{})
	if !errors.Is(err, annals.ErrClosed) {
		t.Fatalf("ListStreams after Close: %v, want ErrClosed", err)
	}
}
