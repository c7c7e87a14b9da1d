package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/annals/annals"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ReadyTimeout bounds the store's readiness check behind /health/ready.
const ReadyTimeout = 5 * time.Second

// ProtocolVersion is the version of the KurrentDB gRPC protocol the server
// speaks, as /info reports it (the clients see ServerVersion).
const ProtocolVersion = "v1"

// CallObserver is told of every gRPC call the server finishes, refused
// ones included (package metrics' Metrics is one). It must return at once.
type CallObserver interface {
	ObserveCall(method string, code codes.Code, unary bool, d time.Duration)
}

// traceOptions make the gRPC server trace its calls with tp, if set.
func traceOptions(tp trace.TracerProvider) []grpc.ServerOption {
	if tp == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()), // the metrics are package metrics'
	))}
}

// callObserver makes the interceptors that tell o of each call.
type callObserver struct{ o CallObserver }

func (c callObserver) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	c.o.ObserveCall(info.FullMethod, status.Code(err), true, time.Since(start))
	return resp, err
}

func (c callObserver) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	c.o.ObserveCall(info.FullMethod, status.Code(err), false, time.Since(start))
	return err
}

// Info is what GET /info answers.
type Info struct {
	// Version is the product's (Options.Info.Version); DBVersion the
	// KurrentDB version told to clients (ServerVersion), under KurrentDB's
	// name for it.
	Version         string `json:"version"`
	DBVersion       string `json:"dbVersion"`
	ProtocolVersion string `json:"protocolVersion"`
	// Store names the backend: embedded, postgres, memory.
	Store         string  `json:"store"`
	State         string  `json:"state"` // "leader", as a single KurrentDB node
	StartedAt     string  `json:"startedAt"`
	UptimeSeconds float64 `json:"uptimeSeconds"`
}

// mountObservation serves /info, /health/ready and, with
// Options.Metrics, /metrics: open to all, as KurrentDB's are, so that
// probes and scrapers need no credentials. They show no event.
func mountObservation(mux *http.ServeMux, store annals.Store, opts Options, started time.Time) {
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		info := opts.Info
		info.DBVersion, info.ProtocolVersion, info.State = ServerVersion, ProtocolVersion, "leader"
		info.StartedAt = started.UTC().Format(time.RFC3339)
		info.UptimeSeconds = time.Since(started).Round(time.Millisecond).Seconds()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := ready(ctx, store); err != nil {
			opts.Logger.Warn("readiness check failed", "err", err)
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
}

// ready asks store whether it takes writes; a store that cannot tell is
// asked for one event of $all, which at least shows it open.
func ready(ctx context.Context, store annals.Store) error {
	if r, ok := store.(annals.ReadyChecker); ok {
		return r.Ready(ctx)
	}
	for _, err := range store.ReadAll(ctx, annals.ReadAllOptions{Limit: 1}) {
		return err
	}
	return nil
}

// endWith ends the context of every request next serves when stopping is
// done: a console's live tail would otherwise hold Shutdown for its grace.
func endWith(stopping context.Context, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer context.AfterFunc(stopping, cancel)()
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
