package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/console"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/metrics"
	"github.com/annals/annals/process"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
)

const defaultListen = "127.0.0.1:2113"

// serveFlags are the flags of annals serve.
type serveFlags struct {
	listen, tlsCert, tlsKey, tlsCA   *string
	adminPassword, adminPasswordFile *string
	projections, readModels          *string
	logFormat, logLevel              *string
	insecure, metrics, console       *bool
	alerts                           *alertFlags
}

func setupServe(fs *flag.FlagSet) runFunc {
	f := serveFlags{
		listen:   fs.String("listen", defaultListen, "the `host:port` to serve gRPC and HTTP on"),
		insecure: fs.Bool("insecure", false, "serve without TLS and without authentication, as KurrentDB's --insecure"),
		tlsCert:  fs.String("tls-cert", "", "TLS certificate `file` (PEM); with --tls-key, serves TLS and requires credentials"),
		tlsKey:   fs.String("tls-key", "", "TLS private key `file` (PEM)"),
		tlsCA:    fs.String("tls-ca", "", "CA certificate `file` (PEM) to verify client certificates, when a client presents one"),
		adminPassword: fs.String("admin-password", "", "the password of the built-in admin user, with TLS (default: $ANNALS_ADMIN_PASSWORD, else changeit); "+
			"other local users see it in the process list: prefer --admin-password-file"),
		adminPasswordFile: fs.String("admin-password-file", "", "a `file` holding the admin user's password (one line)"),
		projections: fs.String("projection", "", "built-in projections to run, comma-separated `names` ("+strings.Join(builtinProjections, ", ")+
			"); served under /api/projections"),
		readModels: fs.String("read-models", "", "the `directory` of the projections' read models with the embedded store (default: the --db directory followed by .read-models)"),
		metrics:    fs.Bool("metrics", true, "serve Prometheus metrics at /metrics (docs/metrics.md); --metrics=false measures nothing"),
		console:    fs.Bool("console", true, "serve the web console at / (docs/console.md)"),
		logFormat:  fs.String("log-format", "text", "the log's `format`: text or json"),
		logLevel:   fs.String("log-level", "info", "the least `level` logged: debug, info, warn or error"),
		alerts:     addAlertFlags(fs),
	}
	return func(ctx context.Context, e *env) error {
		cfg, err := f.check(e)
		if err != nil {
			return err
		}
		return serve(ctx, e, cfg)
	}
}

// serveConfig is annals serve's flags, checked.
type serveConfig struct {
	listen      string
	useTLS      bool
	names       []string // the projections
	readModels  string
	logger      *slog.Logger
	log         *console.Log // the warnings and errors, for the console
	metrics     bool
	console     bool
	serverFlags serveFlags
}

// check refuses contradictory flags and makes the logger.
func (f serveFlags) check(e *env) (serveConfig, error) {
	host, _, err := net.SplitHostPort(*f.listen)
	if err != nil {
		return serveConfig{}, usagef("--listen %q: %v", *f.listen, err)
	}
	useTLS := *f.tlsCert != "" || *f.tlsKey != ""
	switch {
	case useTLS && *f.insecure:
		return serveConfig{}, usagef("--insecure and --tls-cert/--tls-key contradict each other")
	case useTLS && (*f.tlsCert == "" || *f.tlsKey == ""):
		return serveConfig{}, usagef("TLS needs both --tls-cert and --tls-key")
	case !useTLS && (*f.adminPassword != "" || *f.adminPasswordFile != ""):
		return serveConfig{}, usagef("--admin-password and --admin-password-file go with TLS (--tls-cert, --tls-key): without it there is no authentication")
	case !useTLS && *f.tlsCA != "":
		return serveConfig{}, usagef("--tls-ca goes with --tls-cert and --tls-key")
	case !useTLS && !*f.insecure && !loopback(host):
		return serveConfig{}, usagef("refusing to serve %s without TLS: anyone who reaches it could read and write every stream. "+
			"Serve on a loopback address, give --tls-cert and --tls-key, or pass --insecure to mean it", *f.listen)
	}
	names, err := projectionNames(*f.projections)
	if err != nil {
		return serveConfig{}, err
	}
	dir := *f.readModels
	switch {
	case dir != "" && e.postgres != "":
		return serveConfig{}, usagef("--read-models goes with the embedded store: with --postgres the read models are in PostgreSQL")
	case dir != "" && len(names) == 0:
		return serveConfig{}, usagef("--read-models goes with --projection")
	}
	if dir == "" {
		dir = strings.TrimRight(e.db, "/") + ".read-models"
	}
	logger, err := newLogger(e.stderr, *f.logFormat, *f.logLevel)
	if err != nil {
		return serveConfig{}, err
	}
	ring := console.NewLog()
	logger = slog.New(ring.Handler(logger.Handler()))
	return serveConfig{listen: *f.listen, useTLS: useTLS, names: names, readModels: dir, logger: logger, log: ring,
		metrics: *f.metrics, console: *f.console, serverFlags: f}, nil
}

// newLogger makes the server's logger of --log-format and --log-level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// serverOptions are the server's options of cfg: TLS and credentials, or
// the warning that there are none.
func serverOptions(cfg serveConfig) (server.Options, error) {
	f, logger := cfg.serverFlags, cfg.logger
	opts := server.Options{Logger: logger, Info: server.Info{Version: version}}
	host, _, _ := net.SplitHostPort(cfg.listen)
	switch {
	case cfg.useTLS:
		var err error
		if opts.TLS, err = loadTLS(*f.tlsCert, *f.tlsKey, *f.tlsCA); err != nil {
			return opts, err
		}
		password, err := adminPasswordOf(*f.adminPassword, *f.adminPasswordFile, logger)
		if err != nil {
			return opts, err
		}
		opts.Credentials = server.AdminCredentials(password)
	case !loopback(host):
		logger.Warn("INSECURE: NO TLS AND NO AUTHENTICATION ON " + cfg.listen + ", WHICH IS NOT A LOOPBACK ADDRESS: " +
			"anyone who reaches it can read, write and delete every stream; serve TLS (--tls-cert, --tls-key) unless the network is yours alone")
	default:
		logger.Warn("INSECURE: no TLS and no authentication; serving on a loopback address only")
	}
	return opts, nil
}

// serve runs the server of cfg until ctx is done.
func serve(ctx context.Context, e *env, cfg serveConfig) error {
	logger := cfg.logger
	tuneGC()
	opts, err := serverOptions(cfg)
	if err != nil {
		return err
	}
	limits := annals.Limits{AllowSystemStreams: true}.WithDefaults()
	if e.postgres == "" {
		if err := checkStoreDir(e.db, true); err != nil {
			return err
		}
	}
	var m *metrics.Metrics
	var onCommit func(annals.GroupCommit)
	if cfg.metrics {
		m = metrics.New()
		onCommit = m.ObserveGroupCommit
	}
	raw, err := openStoreObserved(ctx, e, limits, logger, onCommit)
	if errors.Is(err, embedded.ErrLocked) {
		return fmt.Errorf("the store in %s is in use by another process: %w", e.db, err)
	}
	if err != nil {
		return err
	}
	opts.Info.Store = storeKind(e)
	store, stopTraces, err := instrument(ctx, raw, m, &opts, logger)
	if err != nil {
		raw.Close()
		return err
	}
	defer stopTraces()
	// The projections this server runs, served under /api/projections
	// (annals projections); an empty registry without --projection.
	running, err := startProjections(ctx, e, store, cfg.names, cfg.readModels, logger)
	if err != nil {
		raw.Close()
		return err
	}
	opts.Projections = serveproj.Registry(running.registry)
	// The process managers' status and control (package process), of
	// those that run on this store in any process, under /api/processes.
	opts.Processes = process.Handler(store)
	opts.Limits = limits
	notifier, err := cfg.serverFlags.alerts.notifier(cfg)
	if err == nil {
		defer notifier.Close()
		err = withConsole(ctx, cfg, store, m, notifier, &opts)
	}
	if err != nil {
		running.stop(logger)
		raw.Close()
		return err
	}
	watch := func(ctx context.Context, srv *server.Server) {
		cfg.serverFlags.alerts.watch(ctx, notifier, srv, opts.Projections, diskUsage(raw), store)
	}
	err = listenAndServe(ctx, cfg.listen, store, opts, m, watch)
	running.stop(logger)
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		logger.Info("stopped")
	}
	return err
}

// listenAndServe serves store on listen until ctx is done, then shuts the
// server down.
func listenAndServe(ctx context.Context, listen string, store annals.Store, opts server.Options, m *metrics.Metrics,
	watch func(context.Context, *server.Server)) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv, err := server.New(store, opts)
	if err != nil {
		l.Close()
		if opts.Persistent != nil {
			opts.Persistent.Close()
		}
		return err
	}
	if m != nil {
		watchServed(m, srv, opts.Projections)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watch(watchCtx, srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		opts.Logger.Info("shutting down: finishing calls in flight", "grace", server.ShutdownGrace)
		err = srv.Shutdown(context.Background())
		if serr := <-served; err == nil {
			err = serr
		}
	}
	return err
}

// loadTLS reads the server's certificate and key, and the CA that client
// certificates must chain to, if any.
func loadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading --tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// loopback reports whether host names only this machine.
// adminPasswordOf is the admin's password: from flag, or the first line of
// file, or $ANNALS_ADMIN_PASSWORD, else the default (with a warning).
func adminPasswordOf(flag, file string, logger *slog.Logger) (string, error) {
	switch {
	case flag != "" && file != "":
		return "", usagef("--admin-password and --admin-password-file contradict each other")
	case flag != "":
		logger.Warn("the admin password given by --admin-password is visible to every local user in the process list; " +
			"use --admin-password-file or ANNALS_ADMIN_PASSWORD")
		return flag, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--admin-password-file: %w", err)
		}
		password, _, _ := strings.Cut(string(b), "\n")
		if password = strings.TrimSuffix(password, "\r"); password == "" {
			return "", fmt.Errorf("--admin-password-file %s: its first line is empty", file)
		}
		return password, nil
	}
	if password := os.Getenv("ANNALS_ADMIN_PASSWORD"); password != "" {
		return password, nil
	}
	logger.Warn("THE ADMIN PASSWORD IS THE DEFAULT, changeit: anyone who knows it can read and write every stream; " +
		"set --admin-password-file or ANNALS_ADMIN_PASSWORD")
	return "changeit", nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
