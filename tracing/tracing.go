// Package tracing traces the appends of an Annals store with
// OpenTelemetry: a span per append, from the call until the store's answer
// (the wait in the writer's queue and the group commit included).
//
// The official clients' tracing (KurrentDB's OpenTelemetry
// instrumentation) writes its span's context into each event's JSON
// metadata as "$traceId" and "$spanId". The append's span honours it: the
// first event's context becomes the span's remote parent, so the server's
// work shows in the client's trace, and the span links to the gRPC call's
// span and to the other events' contexts (at most MaxLinks). Without such
// metadata the call's span is the parent. The metadata is stored as sent,
// so that subscribers restore the context as the clients do.
//
// `annals serve` turns tracing on when the standard OTEL_EXPORTER_OTLP_*
// variables name an endpoint (docs/metrics.md#traces).
package tracing

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/annals/annals"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Metadata keys of the trace context the official clients put in events.
const (
	TraceIDKey = "$traceId"
	SpanIDKey  = "$spanId"
)

var traceIDKey = []byte(`"` + TraceIDKey + `"`)

// MaxLinks bounds the links an append's span takes to its events' trace
// contexts: an append of 10,000 events, each of its own trace, links to
// the first MaxLinks.
const MaxLinks = 32

// InstrumentationName names the tracer.
const InstrumentationName = "github.com/annals/annals/tracing"

// Store returns s with a span per Append, made by tp's tracer.
func Store(s annals.Store, tp trace.TracerProvider) annals.Store {
	return &store{Store: s, tracer: tp.Tracer(InstrumentationName)}
}

type store struct {
	annals.Store
	tracer trace.Tracer
}

var (
	_ annals.LimitsReporter   = (*store)(nil)
	_ annals.PositionReporter = (*store)(nil)
	_ annals.ReadyChecker     = (*store)(nil)
)

// startOptions are an append span's options when no event carries a
// trace context: shared, so an unsampled append allocates no options.
var startOptions = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}

func (s *store) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	opts := startOptions
	if contexts := eventContexts(events); len(contexts) > 0 {
		// The client's append is the cause: its span becomes the parent,
		// the call's span (if any) and the other events' contexts links.
		opts = append(slices.Clip(opts), linkOptions(ctx, contexts[1:])...)
		ctx = trace.ContextWithRemoteSpanContext(ctx, contexts[0])
	}
	ctx, span := s.tracer.Start(ctx, "annals.append", opts...)
	res, err := s.Store.Append(ctx, stream, expected, events...)
	if span.IsRecording() {
		// Attributes are set once the append is done, and only on a span
		// that is kept: the sampler is not given them, and an unsampled
		// append pays for none of them.
		recordAppend(span, stream, len(events), res, err)
	}
	span.End()
	return res, err
}

// AppendMulti traces a multi-stream append as one "annals.append_multi"
// span, parented and linked by its records' trace contexts as Append's.
func (s *store) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	opts := startOptions
	events := make([]annals.EventData, len(m.Records))
	for i := range m.Records {
		events[i] = m.Records[i].Event
	}
	if contexts := eventContexts(events); len(contexts) > 0 {
		opts = append(slices.Clip(opts), linkOptions(ctx, contexts[1:])...)
		ctx = trace.ContextWithRemoteSpanContext(ctx, contexts[0])
	}
	ctx, span := s.tracer.Start(ctx, "annals.append_multi", opts...)
	res, err := s.Store.AppendMulti(ctx, m)
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("db.system.name", "annals"),
			attribute.String("db.operation.name", "append_multi"),
			attribute.Int("annals.events", len(m.Records)),
			attribute.Int("annals.streams", len(res.Streams)),
			attribute.Int("annals.checks", len(m.Checks)),
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else {
			attrs = append(attrs, attribute.Int64("annals.first_position", int64(res.FirstPosition)),
				attribute.Int64("annals.last_position", int64(res.LastPosition)))
		}
		span.SetAttributes(attrs...)
	}
	span.End()
	return res, err
}

// linkOptions link an append's span to the call's span and to the trace
// contexts of its events after the first.
func linkOptions(ctx context.Context, others []trace.SpanContext) []trace.SpanStartOption {
	links := make([]trace.Link, 0, len(others)+1)
	if call := trace.SpanContextFromContext(ctx); call.IsValid() {
		links = append(links, trace.Link{SpanContext: call})
	}
	for _, c := range others {
		links = append(links, trace.Link{SpanContext: c})
	}
	return []trace.SpanStartOption{trace.WithLinks(links...)}
}

// recordAppend sets the attributes of an append's span, and its error.
func recordAppend(span trace.Span, stream string, events int, res annals.AppendResult, err error) {
	attrs := make([]attribute.KeyValue, 0, 7) // one allocation for both cases
	attrs = append(attrs,
		attribute.String("db.system.name", "annals"),
		attribute.String("db.operation.name", "append"),
		attribute.String("annals.stream", stream),
		attribute.Int("annals.events", events),
	)
	if err != nil {
		span.SetAttributes(attrs...)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return
	}
	span.SetAttributes(append(attrs,
		attribute.String("annals.next_expected", nextExpected(res.NextExpected)),
		attribute.Int64("annals.first_position", int64(res.FirstPosition)),
		attribute.Int64("annals.last_position", int64(res.LastPosition)),
	)...)
}

// nextExpected is the revision an append left its stream at, as text.
func nextExpected(e annals.ExpectedRevision) string {
	if r, ok := e.Revision(); ok {
		return strconv.FormatUint(uint64(r), 10)
	}
	return "no_stream"
}

// eventContexts are the distinct valid trace contexts of events' metadata,
// in order, at most MaxLinks+1.
func eventContexts(events []annals.EventData) []trace.SpanContext {
	var out []trace.SpanContext
	for i := range events {
		c, ok := FromMetadata(events[i].Metadata)
		if !ok || (len(out) > 0 && out[len(out)-1].Equal(c)) {
			continue
		}
		if out = append(out, c); len(out) > MaxLinks {
			break
		}
	}
	return out
}

// FromMetadata reads the trace context an official client wrote into an
// event's JSON metadata ($traceId: 32 hex digits, $spanId: 16), as a
// sampled remote context.
func FromMetadata(metadata []byte) (trace.SpanContext, bool) {
	if len(metadata) == 0 || metadata[0] != '{' || !bytes.Contains(metadata, traceIDKey) {
		return trace.SpanContext{}, false // most metadata: not parsed
	}
	var md struct {
		TraceID string `json:"$traceId"`
		SpanID  string `json:"$spanId"`
	}
	if json.Unmarshal(metadata, &md) != nil {
		return trace.SpanContext{}, false
	}
	var cfg trace.SpanContextConfig
	if hex.DecodedLen(len(md.TraceID)) != len(cfg.TraceID) || hex.DecodedLen(len(md.SpanID)) != len(cfg.SpanID) {
		return trace.SpanContext{}, false
	}
	if _, err := hex.Decode(cfg.TraceID[:], []byte(md.TraceID)); err != nil {
		return trace.SpanContext{}, false
	}
	if _, err := hex.Decode(cfg.SpanID[:], []byte(md.SpanID)); err != nil {
		return trace.SpanContext{}, false
	}
	cfg.TraceFlags, cfg.Remote = trace.FlagsSampled, true
	c := trace.NewSpanContext(cfg)
	return c, c.IsValid()
}

// Limits reports the wrapped store's limits, or the defaults.
func (s *store) Limits() annals.Limits {
	if r, ok := s.Store.(annals.LimitsReporter); ok {
		return r.Limits()
	}
	return annals.Limits{}.WithDefaults()
}

// Position reports the wrapped store's head, 0 if it knows none.
func (s *store) Position() annals.Position {
	if r, ok := s.Store.(annals.PositionReporter); ok {
		return r.Position()
	}
	return 0
}

// Ready asks the wrapped store, untraced.
func (s *store) Ready(ctx context.Context) error {
	if r, ok := s.Store.(annals.ReadyChecker); ok {
		return r.Ready(ctx)
	}
	return nil
}

// ListStreams lists the wrapped store's streams (annals.StreamLister), or
// fails with errors.ErrUnsupported if it cannot.
func (s *store) ListStreams(ctx context.Context, opts annals.ListStreamsOptions) ([]annals.StreamInfo, error) {
	if l, ok := s.Store.(annals.StreamLister); ok {
		return l.ListStreams(ctx, opts)
	}
	return nil, fmt.Errorf("annals: this store cannot list its streams: %w", errors.ErrUnsupported)
}
