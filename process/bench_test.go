package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
)

// BenchmarkSteps runs b.N steps through one instance per 10,000 boxes
// (one instance up to -benchtime 10000x, so InFlight is the concurrency),
// with at most InFlight commands of an instance in flight. A step is one
// command to one box of the embedded store: load the box, decide, append
// an event; then the step's record in the instance's stream.
func BenchmarkSteps(b *testing.B) {
	for _, inFlight := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			s := teststores.Embedded(b)
			h := boxHandler(s)
			var sent atomic.Int64
			const perInstance = process.MaxCommandsPerDecision
			var requests [][]string
			for i := 0; i < b.N; i += perInstance {
				var boxes []string
				for j := i; j < min(b.N, i+perInstance); j++ {
					boxes = append(boxes, fmt.Sprintf("box-%d", j))
				}
				requests = append(requests, boxes)
			}
			fillAll(b, h, requests)
			m := purgeManager(process.Policy{InFlight: inFlight})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() { done <- m.Run(ctx, s, routes(h, &sent), process.Options{}) }()
			for i, boxes := range requests {
				data, _ := json.Marshal(purgeRequested{Request: fmt.Sprint("r", i), Boxes: boxes})
				if _, err := s.Append(ctx, "admin-1", annals.Any, annals.EventData{Type: "PurgeRequested", Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			for i := range requests {
				for !instanceEnded(s, fmt.Sprint("process.purge-r", i)) {
					select {
					case err := <-done:
						b.Fatalf("the run ended: %v", err)
					case <-time.After(time.Millisecond):
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "steps/s")
		})
	}
}

// fillAll puts done items in every box, from 64 writers.
func fillAll(b *testing.B, h *command.Handler[box, boxCommand, boxEvent], requests [][]string) {
	b.Helper()
	var wg sync.WaitGroup
	work := make(chan string)
	for range 64 {
		wg.Go(func() {
			for name := range work {
				if _, err := h.Handle(context.Background(), name, boxCommand{Op: "done", N: 3}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, boxes := range requests {
		for _, name := range boxes {
			work <- name
		}
	}
	close(work)
	wg.Wait()
}
