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
	"github.com/annals/annals/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAppend appends single 200-byte events to an embedded store,
// durable before each append returns: bare, measured by Metrics, and
// measured and traced (every append sampled, or 1 in 100, the spans
// batched to an exporter that drops them). The cost of each is the
// difference between them in one run.
func BenchmarkAppend(b *testing.B) {
	samplers := map[string]sdktrace.Sampler{"metrics+tracing": sdktrace.AlwaysSample(), "metrics+tracing-1%": sdktrace.TraceIDRatioBased(0.01)}
	for _, mode := range []string{"off", "metrics", "metrics+tracing", "metrics+tracing-1%"} {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				benchAppend(b, mode != "off", samplers[mode], writers)
			})
		}
	}
}

func benchAppend(b *testing.B, measured bool, sampler sdktrace.Sampler, writers int) {
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
	if sampler != nil {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sampler))
		defer tp.Shutdown(context.Background())
		s = tracing.Store(s, tp)
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
