// Package server serves an Annals store over the KurrentDB (EventStoreDB)
// gRPC protocol, so the official clients connect to it as to KurrentDB, and
// over HTTP/1.1 (/health/live, /health/ready, /info, /metrics, KurrentDB's
// /ping, and /api/projections to watch and control the projections of
// Options.Projections) on the same port (split.go sorts the connections).
//
// Served so far: Streams.Append, Streams.BatchAppend, Streams.Read
// (counted reads and catch-up subscriptions, of a stream or of $all, with
// filters), Streams.Delete, Streams.Tombstone, PersistentSubscriptions (Create,
// Update, Delete, Read, GetInfo, List, ReplayParked, RestartSubsystem, on a
// stream or on $all, run by package persistent),
// Projections (Statistics, Disable, Enable, Reset over the Go projections
// of Options.Projections; the JavaScript ones' methods answer
// Unimplemented), ServerFeatures.GetSupportedMethods (advertising exactly
// those) and Gossip.Read (a single leader node); TLS with the admin's
// Basic credentials. Not yet: users other than admin.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/dcbpb"
	ps "github.com/annals/annals/persistent"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/gossip"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/projections"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Limits of the server besides the store's.
const (
	// messageOverheadBytes is the room a gRPC message needs around the
	// largest event it may carry.
	messageOverheadBytes = 64 << 10
	// eventOverheadBytes is the room one event needs in a message besides
	// what counts against the limits (its id, content type, field tags):
	// a BatchAppend message carries a whole append.
	eventOverheadBytes = 128
	// ShutdownGrace is how long Shutdown lets calls in flight finish.
	ShutdownGrace = 10 * time.Second
	// readHeaderTimeout bounds a client that opens a connection and sends
	// nothing.
	readHeaderTimeout = 10 * time.Second
	// MaxStreamsPerConnection bounds the calls one connection may have in
	// flight (each holds a goroutine, a subscription a storage page).
	MaxStreamsPerConnection = 1024
	// streamWorkers is how many goroutines gRPC keeps to run calls on.
	streamWorkers = 64
	// httpIdleTimeout closes HTTP/1.1 connections left idle.
	httpIdleTimeout = 2 * time.Minute
	// KeepaliveTime is how long a gRPC connection may stay silent before
	// the server pings it; KeepaliveTimeout how long it then waits for the
	// answer before it closes the connection. A peer that vanished (its
	// host gone, its network cut, its process frozen) is thus closed, with
	// its calls and their goroutines, at most KeepaliveTime +
	// KeepaliveTimeout after the last thing it sent.
	KeepaliveTime    = 30 * time.Second
	KeepaliveTimeout = 10 * time.Second
	// keepaliveMinClientPing is the shortest interval between a client's
	// pings the server accepts; the clients ping every 10 s, even without
	// calls, and a faster one gets GOAWAY "too_many_pings".
	keepaliveMinClientPing = 5 * time.Second
)

// MaxMessageBytes is the largest gRPC message the server takes under
// limits: a whole append in one message, since the Node and .NET clients
// send an append as one BatchAppend message and an AppendRecords is one
// message (KurrentDB takes up to 16 MiB in one, 1.5 times its append size
// on its v2 service). The memory it takes is only what a client actually sends, and
// an append is refused once past the store's limits.
func MaxMessageBytes(limits annals.Limits) int {
	l := limits.WithDefaults()
	// Protocol v2's AppendRecords and the DCB service's Append name the
	// stream in every record: each may repeat a whole stream name.
	return max(l.MaxEventSizeBytes, l.MaxAppendSizeBytes) + l.MaxAppendEvents*(eventOverheadBytes+l.MaxStreamNameBytes) + messageOverheadBytes
}

// Options configure a Server.
type Options struct {
	// Limits are the store's: the server refuses what the store would.
	// Zero takes those the store reports (annals.LimitsReporter), or the
	// defaults from a store that reports none.
	Limits annals.Limits
	Logger *slog.Logger
	// TLS, if set, serves TLS only (HTTP/2 by ALPN); nil serves plaintext.
	TLS *tls.Config
	// Credentials, if set, checks every call's Basic credentials. Failed
	// authentications are throttled per remote address (AuthFailureBurst,
	// AuthFailuresPerSecond): past them, the address is refused
	// (ResourceExhausted, HTTP 429) without its password being checked.
	Credentials Credentials
	// Projections, if set, are served for status and control over HTTP
	// under ProjectionsPath, behind Credentials like every gRPC call, and
	// over KurrentDB's Projections gRPC service (projections_grpc.go).
	// Package server/serveproj makes them of a projection.Registry.
	Projections Projections
	// Processes, if set, is the process managers' JSON API (package
	// process' Handler), served under ProcessesPath behind Credentials.
	Processes http.Handler

	// MaxAppendBytesInProgress bounds the event bytes held by all the
	// appends the server is receiving or writing (budget.go);
	// DefaultMaxAppendBytesInProgress if zero. At least the store's
	// MaxAppendSizeBytes, or one append could never fit.
	MaxAppendBytesInProgress int

	// Calls, if set, is told of every gRPC call the server finishes.
	Calls CallObserver
	// Metrics, if set, is served at GET /metrics, open to all as
	// KurrentDB's is (package metrics' Handler).
	Metrics http.Handler
	// TracerProvider, if set, traces every gRPC call (a span per call,
	// its parent the W3C traceparent the client sent, if any).
	TracerProvider trace.TracerProvider
	// Console, if set, is served at "/" (the web console, package
	// console), behind Credentials; requests end when Shutdown begins.
	Console http.Handler
	// Persistent, if set, is the persistent subscription manager to serve
	// (the console shares it); the server opens one of its own if nil.
	// Shutdown closes it either way.
	Persistent *ps.Manager
	// Info gives /info the product's version and the store's kind (its
	// Version and Store); the server fills in the rest.
	Info Info

	// appends replaces AppendRoomWait and AppendReceiveTimeout (tests).
	appends appendLimits
	// keepalive replaces KeepaliveTime and KeepaliveTimeout, conns
	// HandshakeTimeout and MaxConnectionsPerAddress (tests).
	keepalive keepalive.ServerParameters
	conns     connLimits
}

// Server serves one store.
type Server struct {
	store  annals.Store
	opts   Options
	grpc   *grpc.Server
	http   *http.Server
	gossip *gossipServer
	// stopping ends subscriptions when Shutdown begins.
	stopping context.Context
	stop     context.CancelFunc
	// persistent runs the persistent subscription groups; nil if their
	// definitions could not be loaded.
	persistent *ps.Manager
	budget     *appendBudget // the bytes of appends in progress

	mu   sync.Mutex
	base net.Listener // the listener Serve accepts on
}

// withDefaults fills the zero fields of o, the limits from store's.
func (o Options) withDefaults(store annals.Store) Options {
	if r, ok := store.(annals.LimitsReporter); ok && o.Limits == (annals.Limits{}) {
		o.Limits = r.Limits()
	}
	o.Limits = o.Limits.WithDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.keepalive == (keepalive.ServerParameters{}) {
		o.keepalive = keepalive.ServerParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout}
	}
	if o.MaxAppendBytesInProgress <= 0 {
		o.MaxAppendBytesInProgress = DefaultMaxAppendBytesInProgress
	}
	o.appends.maxBytes = max(o.MaxAppendBytesInProgress, o.Limits.MaxAppendSizeBytes)
	if o.appends.roomWait <= 0 {
		o.appends.roomWait = AppendRoomWait
	}
	if o.appends.receiveTimeout <= 0 {
		o.appends.receiveTimeout = AppendReceiveTimeout
	}
	if o.conns.handshake <= 0 {
		o.conns.handshake = HandshakeTimeout
	}
	if o.conns.perAddress <= 0 {
		o.conns.perAddress = MaxConnectionsPerAddress
	}
	return o
}

// New builds a server for store. It writes the admin user's records (with
// Credentials) and loads the persistent subscription groups (with system
// streams allowed); it fails if the store refuses either.
func New(store annals.Store, opts Options) (*Server, error) {
	opts = opts.withDefaults(store)
	if err := ensureAdminUser(store, opts); err != nil {
		return nil, err
	}
	m := opts.Persistent
	if m == nil {
		var err error
		if m, err = openPersistent(store, opts); err != nil {
			return nil, err
		}
	}
	s := &Server{store: store, opts: opts, gossip: &gossipServer{id: uuid.New()}, budget: newAppendBudget(opts.appends), persistent: m}
	s.stopping, s.stop = context.WithCancel(context.Background())
	g := newGate(opts.Credentials)
	unary := []grpc.UnaryServerInterceptor{g.unary, failureLog{opts.Logger}.unary}
	stream := []grpc.StreamServerInterceptor{g.stream, failureLog{opts.Logger}.stream}
	if opts.Calls != nil {
		// First, to see the calls the gate refuses too.
		unary = append([]grpc.UnaryServerInterceptor{callObserver{opts.Calls}.unary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{callObserver{opts.Calls}.stream}, stream...)
	}
	s.grpc = grpc.NewServer(append(traceOptions(opts.TracerProvider),
		grpc.MaxRecvMsgSize(MaxMessageBytes(opts.Limits)),
		grpc.MaxConcurrentStreams(MaxStreamsPerConnection),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// The clients ping every 10 s even without calls; the default
		// policy would answer GOAWAY "too_many_pings" and kill
		// subscriptions after ~30 s.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinClientPing, PermitWithoutStream: true}),
		grpc.KeepaliveParams(opts.keepalive),
		grpc.ConnectionTimeout(opts.conns.handshake),
		grpc.InitialWindowSize(streamWindowBytes),
		grpc.InitialConnWindowSize(connWindowBytes),
		// Calls run on long-lived goroutines whose stacks have already
		// grown: a goroutine per call spent ~3% of the CPU growing its
		// stack. Busy workers fall back to a goroutine per call.
		grpc.NumStreamWorkers(streamWorkers),
	)...)
	streams.RegisterStreamsServer(s.grpc, &streamsServer{store: store, limits: opts.Limits, stopping: s.stopping, logger: opts.Logger,
		budget: s.budget})
	v2.RegisterStreamsServiceServer(s.grpc, &streamsV2Server{store: store, limits: opts.Limits, budget: s.budget})
	dcbpb.RegisterDCBServer(s.grpc, &dcbServer{store: store, limits: opts.Limits, budget: s.budget})
	if m != nil {
		persistent.RegisterPersistentSubscriptionsServer(s.grpc, &persistentServer{m: m, stopping: s.stopping})
	}
	// The projections are listed and controlled by KurrentDB's projection
	// management too (projections_grpc.go).
	if opts.Projections != nil {
		projections.RegisterProjectionsServer(s.grpc, &projectionsServer{reg: opts.Projections})
	}
	serverfeatures.RegisterServerFeaturesServer(s.grpc, features{persistent: s.persistent != nil, projections: opts.Projections != nil})
	gossip.RegisterGossipServer(s.grpc, s.gossip)
	if opts.TLS != nil {
		s.opts.TLS = alpnByClient(opts.TLS)
	}
	s.http = &http.Server{
		Handler:           httpMux(store, opts, g, s.stopping),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// openPersistent loads the persistent subscription groups, which keep
// their state in system streams: without those (nil, and the rest still
// serves) their methods are neither served nor advertised.
func openPersistent(store annals.Store, opts Options) (*ps.Manager, error) {
	if !opts.Limits.AllowSystemStreams {
		opts.Logger.Info("persistent subscriptions not served: the store does not allow system streams")
		return nil, nil
	}
	m, err := ps.Open(context.Background(), store, ps.Options{Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("server: loading the persistent subscription groups: %w", err)
	}
	return m, nil
}

// httpMux serves the HTTP/1.1 endpoints.
func httpMux(store annals.Store, opts Options, g *gate, stopping context.Context) *http.ServeMux {
	mux := http.NewServeMux()
	mountObservation(mux, store, opts, time.Now())
	if opts.Console != nil {
		mux.Handle("/", g.http(endWith(stopping, opts.Console)))
	}
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	// KurrentDB's ping, open to all as there: the clients' HTTP helpers
	// and their tests use it to see a node is up.
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"text":"Ping request successfully handled"}`))
	})
	if opts.Projections != nil {
		mountProjections(mux, opts.Projections, g)
	}
	if opts.Processes != nil {
		h := g.http(endWith(stopping, opts.Processes))
		mux.Handle(ProcessesPath, h)
		mux.Handle(ProcessesPath+"/", h)
	}
	return mux
}

// Serve accepts connections on l until Shutdown. It returns nil after a
// Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if addr, ok := l.Addr().(*net.TCPAddr); ok {
		s.gossip.host, s.gossip.port = addr.IP.String(), uint32(addr.Port)
	}
	s.opts.Logger.Info("listening", "address", l.Addr().String(), "protocol", "KurrentDB gRPC + HTTP",
		"tls", s.opts.TLS != nil, "version", ServerVersion)
	grpcL, httpL := newConnListener(l.Addr()), newConnListener(l.Addr())
	s.mu.Lock()
	if s.stopping.Err() != nil {
		// Shutdown came first: it had no listener to close.
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.base = l
	s.mu.Unlock()
	served := make(chan error, 2)
	go func() { served <- s.grpc.Serve(grpcL) }()
	go func() { served <- s.http.Serve(httpL) }()
	err := split(l, s.opts.TLS, s.opts.conns, grpcL, httpL)
	for range 2 {
		if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) && !errors.Is(serr, grpc.ErrServerStopped) {
			s.opts.Logger.Error("serving", "err", serr)
		}
	}
	if s.stopping.Err() != nil {
		return nil // Shutdown
	}
	return err
}

// Shutdown stops accepting connections and lets calls in flight finish,
// for at most ShutdownGrace or until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop() // subscriptions never finish by themselves
	ctx, cancel := context.WithTimeout(ctx, ShutdownGrace)
	defer cancel()
	s.mu.Lock()
	if s.base != nil {
		s.base.Close() // no new connections
	}
	s.mu.Unlock()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	err := s.http.Shutdown(ctx)
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop() // the grace is over: cut what is left
		<-stopped
		if err == nil {
			err = ctx.Err()
		}
	}
	if s.persistent != nil {
		s.persistent.Close() // writes the groups' checkpoints: before the store closes
	}
	return err
}

// Groups describes every persistent subscription group, sorted by stream
// and name; none if they are not served.
func (s *Server) Groups() ([]ps.GroupInfo, error) {
	if s.persistent == nil {
		return nil, nil
	}
	return s.persistent.List("")
}
