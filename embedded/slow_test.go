package embedded_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
)

// A subscriber that stops consuming must not make the store buffer for it:
// memory stays flat while 100 MB of events are appended behind it, and it
// then receives all of them, in order.
func TestSlowSubscriberMemoryBounded(t *testing.T) {
	const (
		appends        = 100
		eventsPerBatch = 1000
		eventBytes     = 1000
		growthMaxBytes = 32 << 20
	)
	// Small engine memory: under the race detector pebble's memtables and
	// block cache live on the Go heap, and this test measures the heap.
	s, err := embedded.Open(t.TempDir(), embedded.Options{
		MemTableBytes:   4 << 20,
		BlockCacheBytes: 4 << 20,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	gate := make(chan struct{})
	caughtUp := make(chan struct{})
	got := make(chan annals.Position, 1)
	go func() {
		var last annals.Position
		first := true
		for m, err := range s.SubscribeToAll(ctx, annals.SubscribeAllOptions{}) {
			if err != nil {
				got <- last
				return
			}
			if m.Kind == annals.MessageCaughtUp && first {
				first = false
				close(caughtUp)
				<-gate // a consumer stuck in its handler
				continue
			}
			if m.Kind != annals.MessageEvent {
				continue
			}
			if m.Event.Position != last+1 {
				t.Errorf("position %d after %d", m.Event.Position, last)
			}
			last = m.Event.Position
			if last == appends*eventsPerBatch {
				got <- last
				return
			}
		}
	}()
	<-caughtUp
	heapBefore := heapInUse()
	batch := make([]annals.EventData, eventsPerBatch)
	for i := range batch {
		batch[i] = annals.EventData{Type: "Filler", ContentType: annals.ContentTypeBinary, Data: make([]byte, eventBytes)}
	}
	for range appends {
		if _, err := s.Append(ctx, "filler", annals.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	batch = nil
	growth := int64(heapInUse()) - int64(heapBefore)
	t.Logf("heap growth while %d MB were appended behind a stuck subscriber: %.1f MB",
		appends*eventsPerBatch*eventBytes>>20, float64(growth)/(1<<20))
	if growth > growthMaxBytes {
		t.Errorf("heap grew %d bytes behind a stuck subscriber, want at most %d", growth, growthMaxBytes)
	}
	close(gate)
	if last := <-got; last != appends*eventsPerBatch {
		t.Fatalf("subscriber reached position %d, want %d", last, appends*eventsPerBatch)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
