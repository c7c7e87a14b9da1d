package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/annals/annals"
)

func TestTagCache(t *testing.T) {
	c := newTagCache(10)
	q := func(tags ...string) annals.Query {
		var out annals.Query
		for _, t := range tags {
			out.Items = append(out.Items, annals.QueryItem{Tags: []string{t}})
		}
		return out
	}
	c.wrote(&annals.Event{Position: 12, Tags: []string{"a", "b"}})
	c.wrote(&annals.Event{Position: 15, Tags: []string{"a"}})
	cases := []struct {
		q     annals.Query
		after annals.Position
		want  bool
	}{
		{q("a"), 9, true},   // before the floor: unknown
		{q("a"), 14, true},  // a at 15
		{q("a"), 15, false}, // nothing with a since
		{q("b"), 12, false},
		{q("b"), 11, true},
		{q("c"), 10, false}, // never written since open
		{q("c", "a"), 12, true},
	}
	for _, tc := range cases {
		if got := c.mayMatch(tc.q, tc.after); got != tc.want {
			t.Errorf("mayMatch(%v, %d) = %v, want %v", tc.q.Items, tc.after, got, tc.want)
		}
	}
	// Eviction raises the floor to the evicted tag's position.
	for i := range TagCacheEntries {
		c.wrote(&annals.Event{Position: annals.Position(100 + i), Tags: []string{fmt.Sprintf("t%d", i)}})
	}
	if c.floor < 12 || len(c.last) > TagCacheEntries {
		t.Fatalf("after eviction: floor %d, %d entries", c.floor, len(c.last))
	}
	if !c.mayMatch(q("gone"), c.floor-1) {
		t.Fatal("below the floor must be unknown")
	}
}

// TestConditionScanBounded: a condition whose query names no tag reads at
// most MaxConditionScanEvents events in the writer; past them it is
// refused, unless a match came within them.
func TestConditionScanBounded(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	batch := make([]annals.EventData, 10_000)
	for i := range batch {
		batch[i] = annals.EventData{Type: "Filler"}
	}
	for range annals.MaxConditionScanEvents/len(batch) + 1 {
		if _, err := s.Append(ctx, "filler", annals.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	cond := func(typ string) *annals.Condition {
		return &annals.Condition{Query: annals.Query{Items: []annals.QueryItem{{Types: []string{typ}}}}}
	}
	rec := []annals.Record{{Stream: "x", Event: annals.EventData{Type: "X"}}}
	if _, err := s.AppendMulti(ctx, annals.MultiAppend{Records: rec, Condition: cond("Nothing")}); !errors.Is(err, annals.ErrConditionScan) || !errors.Is(err, annals.ErrInvalidInput) {
		t.Fatalf("a scan past the bound: %v, want ErrConditionScan", err)
	}
	if _, err := s.AppendMulti(ctx, annals.MultiAppend{Records: rec, Condition: cond("Filler")}); !errors.Is(err, annals.ErrConditionFailed) {
		t.Fatalf("a match within the bound: %v, want ErrConditionFailed", err)
	}
}
