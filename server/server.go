// Package server serves an Annals store over the KurrentDB (EventStoreDB)
// gRPC protocol, so the official clients connect to it as to KurrentDB, and
// over HTTP (/health/live) on the same port.
//
// Served so far: Streams.Append, Streams.Read (counted reads and
// catch-up subscriptions, of a stream or of $all, with filters),
// Streams.Delete, Streams.Tombstone, ServerFeatures.GetSupportedMethods
// (advertising exactly those) and Gossip.Read (a single leader node); TLS
// with the admin's Basic credentials. Not yet: BatchAppend, persistent
// subscriptions, projections, users other than admin.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/gossip"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
)

// Limits of the server besides the store's.
const (
	// messageOverheadBytes is the room a gRPC message needs around the
	// largest event it may carry.
	messageOverheadBytes = 64 << 10
	// ShutdownGrace is how long Shutdown lets calls in flight finish.
	ShutdownGrace = 10 * time.Second
	// readHeaderTimeout bounds a client that opens a connection and sends
	// nothing.
	readHeaderTimeout = 10 * time.Second
)

// Options configure a Server.
type Options struct {
	// Limits must be the store's: the server refuses what the store would.
	Limits annals.Limits
	Logger *slog.Logger
	// TLS, if set, serves TLS only (HTTP/2 by ALPN); nil serves plaintext.
	TLS *tls.Config
	// Credentials, if set, checks every call's Basic credentials.
	Credentials Credentials
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
}

// New builds a server for store.
func New(store annals.Store, opts Options) *Server {
	opts.Limits = opts.Limits.WithDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{store: store, opts: opts, gossip: &gossipServer{id: uuid.New()}}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(opts.Limits.MaxEventSizeBytes+messageOverheadBytes),
		grpc.UnaryInterceptor(opts.Credentials.unary),
		grpc.StreamInterceptor(opts.Credentials.stream),
	)
	streams.RegisterStreamsServer(s.grpc, &streamsServer{store: store, limits: opts.Limits, stopping: s.stopping})
	serverfeatures.RegisterServerFeaturesServer(s.grpc, features{})
	gossip.RegisterGossipServer(s.grpc, s.gossip)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	if opts.TLS == nil {
		protocols.SetUnencryptedHTTP2(true) // gRPC clients speak HTTP/2 with prior knowledge
	}
	s.http = &http.Server{
		Handler:           s.route(mux),
		Protocols:         protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		TLSConfig:         opts.TLS,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// route sends gRPC calls to the gRPC server and everything else to mux.
func (s *Server) route(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.grpc.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Serve accepts connections on l until Shutdown. It returns nil after a
// Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if addr, ok := l.Addr().(*net.TCPAddr); ok {
		s.gossip.host, s.gossip.port = addr.IP.String(), uint32(addr.Port)
	}
	s.opts.Logger.Info("listening", "address", l.Addr().String(), "protocol", "KurrentDB gRPC + HTTP",
		"tls", s.opts.TLS != nil, "version", ServerVersion)
	var err error
	if s.opts.TLS != nil {
		err = s.http.ServeTLS(l, "", "")
	} else {
		err = s.http.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and lets calls in flight finish,
// for at most ShutdownGrace or until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop() // subscriptions never finish by themselves
	ctx, cancel := context.WithTimeout(ctx, ShutdownGrace)
	defer cancel()
	return s.http.Shutdown(ctx)
}
