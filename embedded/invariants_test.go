//go:build invariants

package embedded

import (
	"strings"
	"testing"

	"github.com/annals/annals/internal/core"
	"github.com/cockroachdb/pebble/v2"
)

// The writer's assertions fire when their invariant is broken, and stay
// quiet when it holds.
func TestWriterInvariantsAsserted(t *testing.T) {
	w := &writer{s: &Store{wm: core.NewWatermark(10)}}
	broken := func(want string, fn func()) {
		t.Helper()
		if msg := core.Broken(fn); !strings.Contains(msg, want) {
			t.Errorf("want a panic naming %q, got %q", want, msg)
		}
	}
	// A group decided at position 11 answered while 10 is durable.
	broken("invariant 3", func() { w.syncAndAnswer(&group{lastPos: 11}) })
	// A group synced out of turn: position 11 must come first.
	broken("invariant 2", func() { w.syncAndAnswer(&group{batch: new(pebble.Batch), firstPos: 12, lastPos: 12}) })
	// A group that wrote nothing, decided on what is durable.
	w.syncAndAnswer(&group{lastPos: 10})
}
