package tracing_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
)

func traced(t *testing.T) (annals.Store, *tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tracing.Store(memory.New(memory.Options{}), tp), exp, tp
}

func withContext(traceID, spanID string) []byte {
	return fmt.Appendf(nil, `{"$traceId":%q,"$spanId":%q,"other":1}`, traceID, spanID)
}

// TestClientContextIsTheParent: an event carrying the official clients'
// trace context makes the append's span a child of the client's span, and
// links the call's span.
func TestClientContextIsTheParent(t *testing.T) {
	s, exp, tp := traced(t)
	ctx, call := tp.Tracer("test").Start(context.Background(), "call")
	_, err := s.Append(ctx, "order-1", annals.Any,
		annals.EventData{Type: "Placed", Metadata: withContext(clientTrace, clientSpan)},
		annals.EventData{Type: "Paid", Metadata: withContext(clientTrace, "1111111111111111")})
	call.End()
	if err != nil {
		t.Fatal(err)
	}
	span := find(t, exp, "annals.append")
	if got := span.Parent; got.TraceID().String() != clientTrace || got.SpanID().String() != clientSpan || !got.IsRemote() {
		t.Errorf("parent %v, want the client's %s/%s, remote", got, clientTrace, clientSpan)
	}
	if len(span.Links) != 2 || span.Links[0].SpanContext.SpanID() != call.SpanContext().SpanID() ||
		span.Links[1].SpanContext.SpanID().String() != "1111111111111111" {
		t.Errorf("links %+v, want the call's span then the second event's", span.Links)
	}
	if !hasAttr(span, "annals.stream", "order-1") || !hasAttr(span, "annals.last_position", "2") {
		t.Errorf("attributes %v", span.Attributes)
	}
}

// TestCallIsTheParent: without a context in the events, the call's span
// is the parent, and a refused append's span records the error.
func TestCallIsTheParent(t *testing.T) {
	s, exp, tp := traced(t)
	ctx, call := tp.Tracer("test").Start(context.Background(), "call")
	s.Append(ctx, "order-1", annals.Any, annals.EventData{Type: "Placed", Metadata: []byte(`{"a":1}`)})
	_, err := s.Append(ctx, "order-1", annals.NoStream, annals.EventData{Type: "Placed"})
	call.End()
	if err == nil {
		t.Fatal("the second append succeeded")
	}
	spans := exp.GetSpans()
	var appends []tracetest.SpanStub
	for _, sp := range spans {
		if sp.Name == "annals.append" {
			appends = append(appends, sp)
		}
	}
	if len(appends) != 2 {
		t.Fatalf("%d append spans, want 2", len(appends))
	}
	for _, sp := range appends {
		if sp.Parent.SpanID() != call.SpanContext().SpanID() || len(sp.Links) != 0 {
			t.Errorf("span parent %v links %v, want the call's span and no link", sp.Parent, sp.Links)
		}
	}
	if appends[1].Status.Code.String() != "Error" || len(appends[1].Events) == 0 {
		t.Errorf("the refused append's span: status %v, events %v", appends[1].Status, appends[1].Events)
	}
}

func TestFromMetadata(t *testing.T) {
	for _, tc := range []struct {
		metadata string
		ok       bool
	}{
		{string(withContext(clientTrace, clientSpan)), true},
		{``, false},
		{`not json`, false},
		{`{"$traceId":"` + clientTrace + `"}`, false},
		{string(withContext(clientTrace[:30], clientSpan)), false},
		{string(withContext(clientTrace, "zz"+clientSpan[2:])), false},
		{string(withContext("00000000000000000000000000000000", clientSpan)), false},
		{`{"$traceId":1,"$spanId":2}`, false},
	} {
		c, ok := tracing.FromMetadata([]byte(tc.metadata))
		if ok != tc.ok || (ok && (c.TraceID().String() != clientTrace || !c.IsSampled() || !c.IsRemote())) {
			t.Errorf("FromMetadata(%s) = %v, %v; want ok %v", tc.metadata, c, ok, tc.ok)
		}
	}
}

// TestLinksBounded: an append whose events carry many contexts links at
// most MaxLinks of them besides its parent.
func TestLinksBounded(t *testing.T) {
	s, exp, _ := traced(t)
	events := make([]annals.EventData, 100)
	for i := range events {
		events[i] = annals.EventData{Type: "T", Metadata: withContext(clientTrace, fmt.Sprintf("%016x", i+1))}
	}
	if _, err := s.Append(context.Background(), "s", annals.Any, events...); err != nil {
		t.Fatal(err)
	}
	if n := len(find(t, exp, "annals.append").Links); n != tracing.MaxLinks {
		t.Errorf("%d links, want %d", n, tracing.MaxLinks)
	}
}

func find(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no span %q among %d", name, len(exp.GetSpans()))
	return tracetest.SpanStub{}
}

func hasAttr(s tracetest.SpanStub, key, value string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.Emit() == value {
			return true
		}
	}
	return false
}

// TestSamplingFollowsTheClient: under a parent-based sampler that keeps
// no root span, an append is traced only when its events carry the
// client's (sampled) context, and the untraced append still works.
func TestSamplingFollowsTheClient(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	s := tracing.Store(memory.New(memory.Options{}), tp)
	res, err := s.Append(context.Background(), "order-1", annals.NoStream, annals.EventData{Type: "Placed"})
	if err != nil || res.LastPosition != 1 {
		t.Fatalf("untraced append: %+v, %v", res, err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans for an unsampled append", n)
	}
	if _, err := s.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: "Paid", Metadata: withContext(clientTrace, clientSpan)}); err != nil {
		t.Fatal(err)
	}
	span := find(t, exp, "annals.append")
	if span.SpanContext.TraceID().String() != clientTrace || !hasAttr(span, "annals.first_position", "2") {
		t.Errorf("span %v in trace %v, want the client's trace and its attributes", span.Attributes, span.SpanContext.TraceID())
	}
}

// TestMultiAppendSpan: a multi-stream append is one span, a child of its
// first record's client context, with its size in its attributes.
func TestMultiAppendSpan(t *testing.T) {
	s, exp, _ := traced(t)
	_, err := s.AppendMulti(context.Background(), annals.MultiAppend{Records: []annals.Record{
		{Stream: "a", Event: annals.EventData{Type: "A", Metadata: withContext(clientTrace, clientSpan)}},
		{Stream: "b", Event: annals.EventData{Type: "B"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	span := find(t, exp, "annals.append_multi")
	if span.Parent.SpanID().String() != clientSpan || !hasAttr(span, "annals.streams", "2") || !hasAttr(span, "annals.last_position", "2") {
		t.Errorf("parent %v, attributes %v", span.Parent, span.Attributes)
	}
}
