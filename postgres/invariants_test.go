//go:build invariants

package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
)

// The writer's assertions fire when their invariant is broken, and stay
// quiet when it holds. No database: they check the writer's own state.
func TestWriterInvariantsAsserted(t *testing.T) {
	s := &Store{wm: core.NewWatermark(10)}
	w := &writer{s: s}
	broken := func(want string, fn func()) {
		t.Helper()
		if msg := core.Broken(fn); !strings.Contains(msg, want) {
			t.Errorf("want a panic naming %q, got %q", want, msg)
		}
	}
	q := core.NewQueue(annals.Limits{}.WithDefaults(), 1, 1, 1)
	answered := make(chan error, 1)
	go func() {
		_, err := q.Write(context.Background(), &core.Op{Kind: core.OpAppend, Stream: "s", Expected: annals.Any})
		answered <- err
	}()
	r := <-q.Requests()
	r.Result.LastPosition = 12
	ws := &writeSet{firstPos: 11, lastPos: 12}
	// A result in what the group wrote, answered before it is committed.
	broken("invariant 4", func() { w.answer([]*core.Request{r}, ws) })
	w.committed(ws)
	// A commit that starts at or before the end of the one before.
	broken("invariant 6", func() { w.committed(&writeSet{firstPos: 12, lastPos: 13}) })
	// Committed, then answered.
	w.answer([]*core.Request{r}, ws)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}
