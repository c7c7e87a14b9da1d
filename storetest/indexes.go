package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/annals/annals"
)

// ExerciseIndexes checks the index streams ($ce-, $et-, $streams,
// $category-) against $all, and the resolution of links. It runs apart
// from Exercise until every store keeps the indexes: the memory and
// embedded stores do, the PostgreSQL store and package remote not yet.
func ExerciseIndexes(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"CategoryFollowsAll", testCategoryFollowsAll},
		{"CategoryReads", testCategoryReads},
		{"ResolveLinks", testResolveLinks},
		{"EventTypeAndStreams", testEventTypeAndStreams},
		{"DeletedOriginals", testDeletedOriginals},
		{"MaxCountOnOriginals", testMaxCountOnOriginals},
		{"IndexStreamMetadata", testIndexStreamMetadata},
		{"NotWritable", testIndexNotWritable},
		{"UserLinks", testUserLinks},
		{"CategoryFilterFromIndex", testCategoryFilterFromIndex},
		{"LiveCategorySubscriber", testLiveCategorySubscriber},
	})
}

// seedCategories appends events of categories order and cart, and a
// stream without a category, interleaved.
func seedCategories(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "order-1", annals.NoStream, evs(2, "OrderPlaced")...)
	mustAppend(t, ctx, s, "cart-1", annals.NoStream, ev("ItemAdded"))
	mustAppend(t, ctx, s, "order-2", annals.NoStream, ev("OrderPlaced"))
	mustAppend(t, ctx, s, "nocategory", annals.NoStream, ev("OrderPlaced"))
	mustAppend(t, ctx, s, "order-1", annals.Exact(1), ev("OrderShipped"))
	mustAppend(t, ctx, s, "orders-9", annals.NoStream, ev("OrderPlaced"))
}

// categoryOf reads $all and keeps the events of category c, as the
// category stream must list them.
func categoryOf(t *testing.T, s annals.Store, c string) []annals.Event {
	var out []annals.Event
	for _, e := range mustReadAll(t, testContext(t), s, annals.ReadAllOptions{}) {
		if got, ok := annals.IndexedCategory(e.Stream); ok && got == c {
			out = append(out, e)
		}
	}
	return out
}

// wantLinks checks that links are the links, at revisions from, to want.
func wantLinks(t *testing.T, name string, links []annals.Event, from annals.Revision, want []annals.Event) {
	t.Helper()
	if len(links) != len(want) {
		t.Fatalf("%s: %d events, want %d", name, len(links), len(want))
	}
	for i, l := range links {
		w := want[i]
		if l.Stream != name || l.Type != annals.EventTypeLink || l.Revision != from+annals.Revision(i) || l.Link != nil {
			t.Fatalf("%s: event %d is %s@%d of type %q, want a link at revision %d", name, i, l.Stream, l.Revision, l.Type, from+annals.Revision(i))
		}
		if got := string(l.Data); got != fmt.Sprintf("%d@%s", w.Revision, w.Stream) || l.Position != w.Position {
			t.Fatalf("%s: link %d is %q at %d, want %d@%s at %d", name, i, got, l.Position, w.Revision, w.Stream, w.Position)
		}
	}
}

func testCategoryFollowsAll(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	want := categoryOf(t, s, "order")
	if len(want) != 4 {
		t.Fatalf("seeded %d order events, want 4", len(want))
	}
	got := mustReadStream(t, testContext(t), s, "$ce-order", annals.ReadStreamOptions{})
	wantLinks(t, "$ce-order", got, 0, want)
	got = mustReadStream(t, testContext(t), s, "$ce-orders", annals.ReadStreamOptions{})
	wantLinks(t, "$ce-orders", got, 0, categoryOf(t, s, "orders"))
	wantReadErr(t, testContext(t), s, "$ce-nocategory", annals.ErrStreamNotFound)
	wantReadErr(t, testContext(t), s, "$ce-none", annals.ErrStreamNotFound)
}

func testCategoryReads(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	ctx := testContext(t)
	want := categoryOf(t, s, "order")
	got := mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{From: 1, Limit: 2})
	wantLinks(t, "$ce-order", got, 1, want[1:3])
	got = mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 3})
	if len(got) != 3 || got[0].Revision != 3 || got[2].Revision != 1 {
		t.Fatalf("backwards from the end: %d links, want revisions 3, 2, 1", len(got))
	}
	for i := range got {
		wantLinks(t, "$ce-order", got[i:i+1], 3-annals.Revision(i), want[3-i:4-i])
	}
	if got := mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{From: 4}); len(got) != 0 {
		t.Fatalf("read past the end: %d links, want none", len(got))
	}
}

func testResolveLinks(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	want := categoryOf(t, s, "order")
	got := mustReadStream(t, testContext(t), s, "$ce-order", annals.ReadStreamOptions{ResolveLinks: true})
	wantSameEvents(t, "$ce-order resolved", got, want)
	for i, e := range got {
		if e.Link == nil || e.Link.Stream != "$ce-order" || e.Link.Revision != annals.Revision(i) || e.Original() != e.Link {
			t.Fatalf("resolved event %d: link %+v, want $ce-order@%d", i, e.Link, i)
		}
	}
}

func testEventTypeAndStreams(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	ctx := testContext(t)
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	var placed, firsts, orderStreams []annals.Event
	for _, e := range all {
		if e.Type == "OrderPlaced" {
			placed = append(placed, e)
		}
		if e.Revision == 0 {
			firsts = append(firsts, e)
			if c, _ := annals.IndexedCategory(e.Stream); c == "order" {
				orderStreams = append(orderStreams, e)
			}
		}
	}
	wantLinks(t, "$et-OrderPlaced", mustReadStream(t, ctx, s, "$et-OrderPlaced", annals.ReadStreamOptions{}), 0, placed)
	wantLinks(t, "$streams", mustReadStream(t, ctx, s, "$streams", annals.ReadStreamOptions{}), 0, firsts)
	refs := mustReadStream(t, ctx, s, "$category-order", annals.ReadStreamOptions{ResolveLinks: true})
	if len(refs) != len(orderStreams) {
		t.Fatalf("$category-order: %d events, want %d", len(refs), len(orderStreams))
	}
	for i, r := range refs {
		if r.Type != annals.EventTypeStreamReference || string(r.Data) != orderStreams[i].Stream || r.Link != nil {
			t.Fatalf("$category-order event %d: %s %q, want $@ %q", i, r.Type, r.Data, orderStreams[i].Stream)
		}
	}
}

func testDeletedOriginals(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	ctx := testContext(t)
	before := len(categoryOf(t, s, "order"))
	if _, err := s.Delete(ctx, "order-2", annals.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, ctx, s, "order-3", annals.NoStream, ev("OrderPlaced"))
	if _, err := s.Tombstone(ctx, "order-3", annals.Any); err != nil {
		t.Fatal(err)
	}
	links := mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{})
	// The soft delete's metadata record and the tombstone are in the
	// category, as KurrentDB's by_category puts them.
	if len(links) != before+3 {
		t.Fatalf("$ce-order holds %d links after a delete, a new stream and a tombstone, want %d", len(links), before+3)
	}
	if last := string(links[len(links)-1].Data); last != fmt.Sprintf("%d@order-3", annals.RevisionTombstone) {
		t.Fatalf("the tombstone's link is %q", last)
	}
	resolved := mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{ResolveLinks: true})
	for i, e := range resolved {
		target, _, _ := annals.ParseLink(links[i].Data)
		gone := target == "order-2" || target == "order-3" // $$order-2 is live
		if gone != (e.Link == nil) || (gone && e.Type != annals.EventTypeLink) {
			t.Fatalf("resolved %d (%s): type %s, link %v; an event of a deleted stream is answered as its link", i, links[i].Data, e.Type, e.Link)
		}
	}
	if got := mustReadStream(t, ctx, s, "$et-$deleted", annals.ReadStreamOptions{}); len(got) != 2 {
		t.Fatalf("$et-$deleted holds %d links, want 2 (a delete, a tombstone)", len(got))
	}
}

func testMaxCountOnOriginals(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "order-1", annals.NoStream, evs(3, "OrderPlaced")...)
	if _, err := s.SetStreamMetadata(ctx, "order-1", annals.Any, annals.StreamMetadata{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	got := mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{ResolveLinks: true})
	if len(got) != 3 || got[0].Link != nil || got[1].Link != nil || got[2].Link == nil || got[2].Revision != 2 {
		t.Fatalf("$ce-order resolved over a stream with $maxCount 1: want two bare links, then order-1@2")
	}
}

func testIndexStreamMetadata(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	ctx := testContext(t)
	if _, rev, err := s.StreamMetadata(ctx, "$ce-order"); err != nil || rev != annals.NoStream {
		t.Fatalf("StreamMetadata($ce-order) before any: %v, %v", rev, err)
	}
	if _, err := s.SetStreamMetadata(ctx, "$ce-order", annals.NoStream, annals.StreamMetadata{MaxCount: 2}); err != nil {
		t.Fatalf("SetStreamMetadata($ce-order): %v", err)
	}
	got := mustReadStream(t, ctx, s, "$ce-order", annals.ReadStreamOptions{})
	if len(got) != 2 || got[0].Revision != 2 {
		t.Fatalf("$ce-order with $maxCount 2: %d links from revision %d, want 2 from 2", len(got), got[0].Revision)
	}
}

func testIndexNotWritable(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	for _, name := range []string{"$ce-order", "$et-OrderPlaced", "$streams", "$category-order"} {
		if _, err := s.Append(ctx, name, annals.Any, ev("X")); !errors.Is(err, annals.ErrInvalidInput) {
			t.Fatalf("Append(%s): %v, want ErrInvalidInput", name, err)
		}
	}
	if n := countAll(t, ctx, s); n != 0 {
		t.Fatalf("refused appends wrote %d events", n)
	}
}

func testUserLinks(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "order-1", annals.NoStream, evs(2, "OrderPlaced")...)
	link := func(data string) annals.EventData {
		e := evData(annals.EventTypeLink, data)
		e.ContentType = annals.ContentTypeBinary
		return e
	}
	mustAppend(t, ctx, s, "picked", annals.NoStream, link("1@order-1"), link("7@order-1"), link("nonsense"))
	target := mustReadStream(t, ctx, s, "order-1", annals.ReadStreamOptions{From: 1})
	got := mustReadStream(t, ctx, s, "picked", annals.ReadStreamOptions{ResolveLinks: true})
	if len(got) != 3 || got[0].Link == nil || got[0].ID != target[0].ID || got[0].Link.Stream != "picked" {
		t.Fatalf("a link to order-1@1 did not resolve to it")
	}
	if got[1].Link != nil || got[2].Link != nil || got[1].Type != annals.EventTypeLink {
		t.Fatalf("a link to a missing event and one that is not a link resolved")
	}
	plain := mustReadStream(t, ctx, s, "picked", annals.ReadStreamOptions{})
	if plain[0].Type != annals.EventTypeLink || plain[0].Link != nil {
		t.Fatalf("without ResolveLinks a link is read as itself")
	}
	// by_category links to what a link points at.
	mustAppend(t, ctx, s, "pick-1", annals.NoStream, link("0@order-1"))
	if ce := mustReadStream(t, ctx, s, "$ce-pick", annals.ReadStreamOptions{}); len(ce) != 1 || string(ce[0].Data) != "0@order-1" {
		t.Fatalf("$ce-pick does not link to the link's target")
	}
	if _, err := readStream(ctx, s, "$et-$>", annals.ReadStreamOptions{}); !errors.Is(err, annals.ErrStreamNotFound) {
		t.Fatalf("links are indexed by type: %v", err)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{ResolveLinks: true, Filter: annals.StreamPrefixFilter("picked")})
	if len(all) != 3 || all[0].Link == nil || all[0].Link.Position != all[0].Original().Position {
		t.Fatalf("$all read with ResolveLinks: the link was not resolved")
	}
}

func testCategoryFilterFromIndex(t *testing.T, s annals.Store) {
	seedCategories(t, s)
	ctx := testContext(t)
	if _, err := s.Tombstone(ctx, "order-2", annals.Any); err != nil {
		t.Fatal(err)
	}
	f := annals.CategoryFilter("order")
	var want []annals.Event
	for _, e := range mustReadAll(t, ctx, s, annals.ReadAllOptions{}) {
		if f.Match(&e) {
			want = append(want, e)
		}
	}
	wantSameEvents(t, "category filter", mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: f}), want)
	from := want[1].Position
	wantSameEvents(t, "from a position", mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: f, From: from, Limit: 2}), want[1:3])
	back := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: f, Direction: annals.Backwards, From: from})
	wantSameEvents(t, "backwards", back, []annals.Event{want[1], want[0]})
}

// testLiveCategorySubscriber: writers append to the streams of a category
// while a subscriber follows its $ce- stream, resolving: every event once,
// in the order of $all.
func testLiveCategorySubscriber(t *testing.T, s annals.Store) {
	const writers, perWriter = 4, 25
	ctx := testContext(t)
	mustAppend(t, ctx, s, "live-0", annals.NoStream, ev("Before"))
	sub := subscribeStream(t, ctx, s, "$ce-live", annals.SubscribeStreamOptions{ResolveLinks: true})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				stream := fmt.Sprintf("live-%d", 1+(w*perWriter+i)%7)
				if _, err := s.Append(ctx, stream, annals.Any, ev("Live"), ev("Other")); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if _, err := s.Append(ctx, "noise-1", annals.Any, ev("Noise")); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	total := 1 + writers*perWriter*2
	var got []annals.Event
	for len(got) < total {
		it := sub.next(t)
		if it.err != nil {
			t.Fatalf("subscription: %v", it.err)
		}
		if it.msg.Kind == annals.MessageEvent {
			got = append(got, it.msg.Event)
		}
	}
	wg.Wait()
	wantSameEvents(t, "live category subscriber", got, categoryOf(t, s, "live"))
	for i, e := range got {
		if e.Link == nil || e.Link.Revision != annals.Revision(i) {
			t.Fatalf("event %d came through link %v, want $ce-live@%d", i, e.Link, i)
		}
	}
}
