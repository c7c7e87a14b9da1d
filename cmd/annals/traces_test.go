package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps what it is sent.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string]otlpSpan // by name
}

type otlpSpan struct{ traceID, parentID string }

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg coltrace.ExportTraceServiceRequest
	if err != nil || req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &msg) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range msg.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans[s.Name] = otlpSpan{hex.EncodeToString(s.TraceId), hex.EncodeToString(s.ParentSpanId)}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func (r *otlpReceiver) span(prefix string) (string, otlpSpan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, s := range r.spans {
		if strings.HasPrefix(name, prefix) {
			return name, s, true
		}
	}
	return "", otlpSpan{}, false
}

// TestServeTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set, annals serve
// exports a span per gRPC call and per append over OTLP, and the append's
// span is a child of the span an official client put in the event's
// metadata.
func TestServeTraces(t *testing.T) {
	rec := &otlpReceiver{spans: map[string]otlpSpan{}}
	collector := httptest.NewServer(rec)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // milliseconds
	n := startServe(t, "--db", t.TempDir())

	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	_, err := n.client.AppendToStream(context.Background(), "order-1", kurrentdb.AppendToStreamOptions{}, kurrentdb.EventData{
		EventType: "Placed", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`),
		Metadata: []byte(`{"$traceId":"` + traceID + `","$spanId":"` + spanID + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(hangGuard); ; time.Sleep(20 * time.Millisecond) {
		_, appendSpan, ok1 := rec.span("annals.append")
		_, _, ok2 := rec.span("event_store.client.streams.Streams/")
		if ok1 && ok2 {
			if appendSpan.traceID != traceID || appendSpan.parentID != spanID {
				t.Errorf("the append's span is in trace %s under %s, want %s under %s", appendSpan.traceID, appendSpan.parentID, traceID, spanID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans received: %v", rec.spans)
		}
	}
}
