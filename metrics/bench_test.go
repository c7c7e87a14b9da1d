package metrics_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/metrics"
)

// BenchmarkAppend appends single 200-byte events to an embedded store,
// durable before each append returns, bare and measured by Metrics: the
// metrics' cost is the difference between the two in one run.
func BenchmarkAppend(b *testing.B) {
	for _, measured := range []bool{false, true} {
		for _, writers := range []int{1, 64} {
			name := fmt.Sprintf("metrics=%s/writers=%d", map[bool]string{false: "off", true: "on"}[measured], writers)
			b.Run(name, func(b *testing.B) { benchAppend(b, measured, writers) })
		}
	}
}

func benchAppend(b *testing.B, measured bool, writers int) {
	opts := embedded.Options{Logger: slog.New(slog.DiscardHandler)}
	var m *metrics.Metrics
	if measured {
		m = metrics.New()
		opts.OnGroupCommit = m.ObserveGroupCommit
	}
	raw, err := embedded.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var s annals.Store = raw
	if measured {
		s = m.Store(raw)
	}
	event := []annals.EventData{{Type: "BenchEvent", Data: make([]byte, 200)}}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream, events := fmt.Sprintf("bench-%d", w), slices.Clone(event)
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(context.Background(), stream, annals.Any, events...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
