package console

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
)

// TestTailSkipsWhenBusy: under more than liveTailEventsPerSecond events a
// second, a live tail sends at most that many a second, in order, and
// says between which positions it skipped.
func TestTailSkipsWhenBusy(t *testing.T) {
	store := memory.New(memory.Options{})
	var out bytes.Buffer
	tl := &tail{w: &out, flush: func() {}, store: store}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tl.run(ctx) }()
	batch := make([]annals.EventData, 50)
	for i := range batch {
		batch[i] = annals.EventData{Type: "Tick"}
	}
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		if _, err := store.Append(ctx, "ticks", annals.Any, batch...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	elapsed := time.Since(start)
	var sent, skips int
	var last annals.Position
	for _, m := range strings.Split(strings.TrimSpace(out.String()), "\n\n") {
		switch {
		case strings.HasPrefix(m, "event: skipped\ndata: "):
			var gap struct{ After, Before annals.Position }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(m, "event: skipped\ndata: ")), &gap); err != nil || gap.After != last || gap.Before <= gap.After+1 {
				t.Fatalf("skipped %q after position %d: %v", m, last, err)
			}
			skips++
		case strings.HasPrefix(m, "data: "):
			var e struct{ Position annals.Position }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(m, "data: ")), &e); err != nil || e.Position <= last {
				t.Fatalf("event %q after position %d: %v", m, last, err)
			}
			last, sent = e.Position, sent+1
		default:
			t.Fatalf("unexpected message %q", m)
		}
	}
	if limit := liveTailEventsPerSecond * int(elapsed/time.Second+1); sent > limit || sent < liveTailEventsPerSecond {
		t.Errorf("sent %d events in %v, want between %d and %d", sent, elapsed, liveTailEventsPerSecond, limit)
	}
	if skips == 0 {
		t.Errorf("no gap reported though %d events went by", last)
	}
}
