package tracing_test

import (
	"context"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Trace a store's appends; an event written by a traced official client
// carries its span's context, which becomes the append span's parent.
func Example() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	store := tracing.Store(memory.New(memory.Options{}), tp)

	md := []byte(`{"$traceId":"4bf92f3577b34da6a3ce929d0e0e4736","$spanId":"00f067aa0ba902b7"}`)
	store.Append(context.Background(), "order-1", annals.NoStream, annals.EventData{Type: "Placed", Metadata: md})

	span := exp.GetSpans()[0]
	fmt.Println(span.Name, span.Parent.TraceID(), span.Parent.SpanID())
	// Output: annals.append 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7
}
