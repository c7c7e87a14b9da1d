package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/annals/annals"
)

func exerciseDCB(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"TagsRoundTrip", testTagsRoundTrip},
		{"ReadQuery", testReadQuery},
		{"ReadQueryPages", testReadQueryPages},
		{"Condition", testCondition},
		{"ConditionAtomic", testConditionAtomic},
		{"BadInput", testDCBBadInput},
		{"Consistency", testDCBConsistency},
	})
}

func tagged(typ string, tags ...string) annals.EventData {
	e := ev(typ)
	e.Tags = tags
	return e
}

func testTagsRoundTrip(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "course-c1", annals.NoStream, tagged("CourseDefined", "course:c1"), ev("Untagged"))
	byQuery := mustQuery(t, ctx, s, annals.Query{Items: []annals.QueryItem{{Tags: []string{"course:c1"}}}}, annals.ReadQueryOptions{})
	if len(byQuery) != 1 || !slices.Equal(byQuery[0].Tags, []string{"course:c1"}) {
		t.Fatalf("query read %d events, tags %v", len(byQuery), byQuery)
	}
	skipIfLimited(t, limitationsOf(s).TagsOnlyInQueries, "TagsOnlyInQueries")
	got := mustReadStream(t, ctx, s, "course-c1", annals.ReadStreamOptions{})
	if !slices.Equal(got[0].Tags, []string{"course:c1"}) || len(got[1].Tags) != 0 {
		t.Fatalf("stream read tags %q and %q, want [course:c1] and none", got[0].Tags, got[1].Tags)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if !slices.Equal(all[0].Tags, []string{"course:c1"}) {
		t.Fatalf("$all read tags %q", all[0].Tags)
	}
}

func mustQuery(t *testing.T, ctx context.Context, s annals.Store, q annals.Query, opts annals.ReadQueryOptions) []annals.Event {
	t.Helper()
	out, err := collect(s.ReadQuery(ctx, q, opts))
	if err != nil {
		t.Fatalf("ReadQuery(%+v, %+v): %v", q, opts, err)
	}
	return out
}

func types(events []annals.Event) string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return strings.Join(out, " ")
}

func testReadQuery(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "c1", annals.NoStream, tagged("CourseDefined", "course:c1"))
	mustAppend(t, ctx, s, "c2", annals.NoStream, tagged("CourseDefined", "course:c2"))
	mustAppend(t, ctx, s, "s7", annals.NoStream, tagged("Subscribed", "course:c1", "student:s7"))
	mustAppend(t, ctx, s, "s8", annals.NoStream, tagged("Subscribed", "course:c2", "student:s8"))
	mustAppend(t, ctx, s, "s7", annals.Any, tagged("Renamed", "student:s7"), ev("Noise"))
	c1 := annals.QueryItem{Tags: []string{"course:c1"}}
	cases := []struct {
		name string
		q    annals.Query
		opts annals.ReadQueryOptions
		want string
	}{
		{"OneTag", annals.Query{Items: []annals.QueryItem{c1}}, annals.ReadQueryOptions{}, "CourseDefined Subscribed"},
		{"AllTags", annals.Query{Items: []annals.QueryItem{{Tags: []string{"course:c1", "student:s7"}}}}, annals.ReadQueryOptions{}, "Subscribed"},
		{"TypeAndTag", annals.Query{Items: []annals.QueryItem{{Types: []string{"Subscribed"}, Tags: []string{"student:s7"}}}}, annals.ReadQueryOptions{}, "Subscribed"},
		{"Or", annals.Query{Items: []annals.QueryItem{c1, {Tags: []string{"student:s8"}}}}, annals.ReadQueryOptions{}, "CourseDefined Subscribed Subscribed"},
		{"OverlappingItemsOnce", annals.Query{Items: []annals.QueryItem{c1, {Tags: []string{"student:s7"}}}}, annals.ReadQueryOptions{}, "CourseDefined Subscribed Renamed"},
		{"TypesOnly", annals.Query{Items: []annals.QueryItem{{Types: []string{"CourseDefined", "Noise"}}}}, annals.ReadQueryOptions{}, "CourseDefined CourseDefined Noise"},
		{"Everything", annals.Query{}, annals.ReadQueryOptions{}, "CourseDefined CourseDefined Subscribed Subscribed Renamed Noise"},
		{"From", annals.Query{Items: []annals.QueryItem{c1}}, annals.ReadQueryOptions{From: 2}, "Subscribed"},
		{"Backwards", annals.Query{Items: []annals.QueryItem{{Tags: []string{"student:s7"}}}}, annals.ReadQueryOptions{Direction: annals.Backwards, From: annals.End}, "Renamed Subscribed"},
		{"BackwardsLimit", annals.Query{Items: []annals.QueryItem{{Types: []string{"CourseDefined"}}}}, annals.ReadQueryOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}, "CourseDefined"},
		{"NoMatch", annals.Query{Items: []annals.QueryItem{{Tags: []string{"course:c9"}}}}, annals.ReadQueryOptions{}, ""},
	}
	for _, tc := range cases {
		got := mustQuery(t, ctx, s, tc.q, tc.opts)
		if types(got) != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, types(got), tc.want)
		}
		for i := 1; i < len(got); i++ {
			if (tc.opts.Direction == annals.Forwards) != (got[i].Position > got[i-1].Position) {
				t.Errorf("%s: positions out of order: %v", tc.name, positions(got))
			}
		}
	}
}

// testReadQueryPages reads a query whose items each match more events
// than one page of the store holds, interleaved, both ways.
func testReadQueryPages(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	var want []uint64
	for i := range 700 {
		tag := []string{"a", "b", "c"}[i%3]
		r := mustAppend(t, ctx, s, "pages", annals.Any, tagged("E", "x:"+tag))
		if tag != "c" {
			want = append(want, uint64(r.LastPosition))
		}
	}
	q := annals.Query{Items: []annals.QueryItem{{Tags: []string{"x:a"}}, {Tags: []string{"x:b"}}}}
	if got := positions(mustQuery(t, ctx, s, q, annals.ReadQueryOptions{})); !slices.Equal(got, want) {
		t.Fatalf("forwards: %d positions, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	back := positions(mustQuery(t, ctx, s, q, annals.ReadQueryOptions{Direction: annals.Backwards, From: annals.End}))
	slices.Reverse(back)
	if !slices.Equal(back, want) {
		t.Fatalf("backwards: %d positions, want %d", len(back), len(want))
	}
}

func testCondition(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "c1", annals.NoStream, tagged("CourseDefined", "course:c1"))
	read := mustQuery(t, ctx, s, annals.Query{Items: []annals.QueryItem{{Tags: []string{"course:c1"}}}}, annals.ReadQueryOptions{})
	after := read[len(read)-1].Position
	q := annals.Query{Items: []annals.QueryItem{{Tags: []string{"course:c1"}}}}
	// Events not matching the query, after the position: no conflict.
	mustAppend(t, ctx, s, "other", annals.NoStream, tagged("CourseDefined", "course:c2"))
	first := mustMulti(t, ctx, s, annals.MultiAppend{
		Records:   []annals.Record{{Stream: "s7", Event: tagged("Subscribed", "course:c1", "student:s7")}},
		Condition: &annals.Condition{Query: q, After: after},
	})
	// The same decision again: an event matching the query came after.
	_, err := s.AppendMulti(ctx, annals.MultiAppend{
		Records:   []annals.Record{{Stream: "s8", Event: tagged("Subscribed", "course:c1", "student:s8")}},
		Condition: &annals.Condition{Query: q, After: after},
	})
	var ce *annals.ConditionError
	if !errors.As(err, &ce) || !errors.Is(err, annals.ErrConditionFailed) || !errors.Is(err, annals.ErrWrongExpectedRevision) {
		t.Fatalf("error %v, want a *ConditionError", err)
	}
	if ce.Position != first.FirstPosition {
		t.Fatalf("condition failed at %d, want %d (the first match after the read)", ce.Position, first.FirstPosition)
	}
	wantReadErr(t, ctx, s, "s8", annals.ErrStreamNotFound)
	// Decided again on what is there now: accepted.
	mustMulti(t, ctx, s, annals.MultiAppend{
		Records:   []annals.Record{{Stream: "s8", Event: tagged("Subscribed", "course:c1", "student:s8")}},
		Condition: &annals.Condition{Query: q, After: first.LastPosition},
	})
	// A type-only query goes by type.
	_, err = s.AppendMulti(ctx, annals.MultiAppend{
		Records:   []annals.Record{{Stream: "x", Event: ev("X")}},
		Condition: &annals.Condition{Query: annals.Query{Items: []annals.QueryItem{{Types: []string{"Subscribed"}}}}, After: first.LastPosition},
	})
	if !errors.Is(err, annals.ErrConditionFailed) {
		t.Fatalf("type-only condition: error %v, want ErrConditionFailed", err)
	}
}

func testConditionAtomic(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "u", annals.NoStream, tagged("UsernameClaimed", "username:ann"))
	before := countAll(t, ctx, s)
	_, err := s.AppendMulti(ctx, annals.MultiAppend{
		Records: []annals.Record{
			{Stream: "user-1", Event: tagged("Registered", "username:ann")},
			{Stream: "audit", Event: ev("Attempted")},
		},
		Condition: &annals.Condition{Query: annals.Query{Items: []annals.QueryItem{{Tags: []string{"username:ann"}}}}},
	})
	if !errors.Is(err, annals.ErrConditionFailed) {
		t.Fatalf("error %v, want ErrConditionFailed", err)
	}
	unchanged(t, s, before)
}

func testDCBBadInput(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "seed", annals.NoStream, ev("Seed"))
	before := countAll(t, ctx, s)
	many := make([]string, annals.MaxTagsPerEvent+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	appends := map[string]annals.EventData{
		"EmptyTag":    tagged("E", "ok", ""),
		"TagTwice":    tagged("E", "a", "a"),
		"LongTag":     tagged("E", strings.Repeat("x", annals.MaxTagBytes+1)),
		"ControlTag":  tagged("E", "a\x00b"),
		"TooManyTags": tagged("E", many...),
	}
	for name, e := range appends {
		if _, err := s.Append(ctx, "bad", annals.Any, e); !errors.Is(err, annals.ErrInvalidInput) {
			t.Errorf("append %s: error %v, want ErrInvalidInput", name, err)
		}
	}
	queries := map[string]annals.Query{
		"EmptyItem":   {Items: []annals.QueryItem{{}}},
		"EmptyTag":    {Items: []annals.QueryItem{{Tags: []string{""}}}},
		"TooManyTags": {Items: []annals.QueryItem{{Tags: many}}},
	}
	for name, q := range queries {
		if _, err := collect(s.ReadQuery(ctx, q, annals.ReadQueryOptions{})); !errors.Is(err, annals.ErrInvalidInput) {
			t.Errorf("read %s: error %v, want ErrInvalidInput", name, err)
		}
		_, err := s.AppendMulti(ctx, annals.MultiAppend{Records: []annals.Record{rec("bad", "E")}, Condition: &annals.Condition{Query: q}})
		if !errors.Is(err, annals.ErrInvalidInput) {
			t.Errorf("condition %s: error %v, want ErrInvalidInput", name, err)
		}
	}
	unchanged(t, s, before)
}

// decision is what a consistency test appender writes into its event:
// the query and position its decision was based on.
type decision struct {
	Tags  []string        `json:"tags"`
	After annals.Position `json:"after"`
}

// testDCBConsistency runs parallel appenders, each deciding on a random
// query of shared tags: read it, append an event carrying that query's
// tags under the condition "nothing matching since my read", retry on
// conflict. Each event records the query and position its decision was
// based on; a replay then checks no condition was violated: no event
// matching a decision's query lies between its position and the event.
func testDCBConsistency(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const appenders, appendsEach = 16, 8
	errs := make(chan error, appenders)
	for a := range appenders {
		go func() { errs <- dcbAppender(ctx, s, a, appendsEach) }()
	}
	for range appenders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != appenders*appendsEach {
		t.Fatalf("%d events, want %d", len(all), appenders*appendsEach)
	}
	for _, e := range all {
		var d decision
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		q := tagsQuery(d.Tags)
		for _, o := range all {
			if o.Position > d.After && o.Position < e.Position && q.Matches(o.Type, o.Tags) {
				t.Fatalf("event %d was decided on the events up to %d of query %v, but %d matching it came in between: a condition was violated",
					e.Position, d.After, d.Tags, o.Position)
			}
		}
	}
}

// tagsQuery matches events carrying any of tags.
func tagsQuery(tags []string) annals.Query {
	q := annals.Query{}
	for _, t := range tags {
		q.Items = append(q.Items, annals.QueryItem{Tags: []string{t}})
	}
	return q
}

func dcbAppender(ctx context.Context, s annals.Store, a, appends int) error {
	for n := range appends {
		tags := []string{fmt.Sprintf("k:%d", rand.IntN(4)), fmt.Sprintf("k:%d", 4+rand.IntN(4))}
		q := tagsQuery(tags)
		for {
			var after annals.Position
			for e, err := range s.ReadQuery(ctx, q, annals.ReadQueryOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
				if err != nil {
					return err
				}
				after = e.Position
			}
			data, _ := json.Marshal(decision{Tags: tags, After: after})
			e := annals.EventData{Type: "Decided", Data: data, Tags: tags}
			_, err := s.AppendMulti(ctx, annals.MultiAppend{
				Records:   []annals.Record{{Stream: fmt.Sprintf("dcb-%d-%d", a, n), Event: e}},
				Condition: &annals.Condition{Query: q, After: after},
			})
			if err == nil {
				break
			}
			if !errors.Is(err, annals.ErrConditionFailed) {
				return fmt.Errorf("appender %d: %w", a, err)
			}
		}
	}
	return nil
}
