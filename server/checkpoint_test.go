package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// A filtered $all subscription checkpoints every window × multiplier events
// read, matching or not, as KurrentDB does: with the multiplier 2 and the
// default window of 32, every 64 events. Half the events match, so a
// counter that restarts on a match (as Annals' did) never checkpoints.
func TestFilteredCheckpointsCountEventsRead(t *testing.T) {
	client, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const total = 384
	var evs []kurrentdb.EventData
	for i := range total {
		typ := "Wanted"
		if i%2 == 1 {
			typ = "Noise"
		}
		evs = append(evs, event(typ, fmt.Sprintf(`{"i":%d}`, i)))
	}
	if _, err := client.AppendToStream(ctx, "mixed", kurrentdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for p := uint64(64); p <= total; p += 64 {
		want = append(want, p)
	}
	// The Go client sends the window 32 by default; the Node client sends
	// none (the "count" window), which KurrentDB takes as 32.
	for _, window := range []int{0, kurrentdb.NoMaxSearchWindow} {
		sub, err := client.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{},
			Filter:          &kurrentdb.SubscriptionFilter{Type: kurrentdb.EventFilterType, Prefixes: []string{"Wanted"}},
			MaxSearchWindow: window, CheckpointInterval: 2})
		if err != nil {
			t.Fatal(err)
		}
		var checkpoints []uint64
		events := 0
		for {
			m := sub.Recv()
			if m.SubscriptionDropped != nil {
				t.Fatalf("dropped: %v", m.SubscriptionDropped.Error)
			}
			if m.EventAppeared != nil {
				events++
			}
			if m.CheckPointReached != nil {
				checkpoints = append(checkpoints, m.CheckPointReached.Commit)
			}
			if m.CaughtUp != nil {
				break
			}
		}
		sub.Close()
		if events != total/2 || !slices.Equal(checkpoints, want) {
			t.Errorf("window %d: %d events, checkpoints at %v; want %d events, checkpoints at %v", window, events, checkpoints, total/2, want)
		}
	}
}
