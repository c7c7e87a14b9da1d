package tracing_test

import (
	"context"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAppend is the cost a span adds to an append, sampled or not,
// beside the bare store. The store under it only counts, so the span's
// own time and garbage are what the rows differ by.
func BenchmarkAppend(b *testing.B) {
	event := annals.EventData{Type: "T", Data: make([]byte, 200), Metadata: []byte(`{"correlationId":"x"}`)}
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"bare", nil}, {"sampled", sdktrace.AlwaysSample()}, {"unsampled", sdktrace.NeverSample()}} {
		b.Run(tc.name, func(b *testing.B) {
			var s annals.Store = &countingStore{}
			if tc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(tc.sampler))
				defer tp.Shutdown(context.Background())
				s = tracing.Store(s, tp)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Append(context.Background(), "s", annals.Any, event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingStore answers appends as a store would, without storing.
type countingStore struct {
	annals.Store
	next annals.Position
}

func (s *countingStore) Append(_ context.Context, _ string, _ annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	first := s.next
	s.next += annals.Position(len(events))
	return annals.AppendResult{NextExpected: annals.Any, FirstPosition: first, LastPosition: s.next - 1}, nil
}
