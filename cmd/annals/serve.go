package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/server"
)

const defaultListen = "127.0.0.1:2113"

func setupServe(fs *flag.FlagSet) runFunc {
	listen := fs.String("listen", defaultListen, "the `host:port` to serve gRPC and HTTP on")
	insecure := fs.Bool("insecure", false, "serve without TLS and without authentication, as KurrentDB's --insecure")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` (not built yet)")
	tlsKey := fs.String("tls-key", "", "TLS key `file` (not built yet)")

	return func(ctx context.Context, e *env) error {
		if *tlsCert != "" || *tlsKey != "" {
			return usagef("TLS is not built yet: serve with --insecure, or without it on a loopback address")
		}
		host, _, err := net.SplitHostPort(*listen)
		if err != nil {
			return usagef("--listen %q: %v", *listen, err)
		}
		if !*insecure && !loopback(host) {
			return usagef("refusing to serve %s without TLS: anyone who reaches it could read and write every stream. "+
				"Serve on a loopback address, or pass --insecure to mean it", *listen)
		}
		logger := slog.New(slog.NewTextHandler(e.stderr, nil))
		if !*insecure {
			logger.Warn("INSECURE: no TLS and no authentication; serving on a loopback address only")
		}
		limits := annals.Limits{AllowSystemStreams: true}.WithDefaults()
		store, err := embedded.Open(e.db, embedded.Options{Limits: limits, Logger: logger})
		if errors.Is(err, embedded.ErrLocked) {
			return fmt.Errorf("the store in %s is in use by another process: %w", e.db, err)
		}
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			store.Close()
			return err
		}
		srv := server.New(store, server.Options{Limits: limits, Logger: logger})
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		select {
		case err = <-served:
		case <-ctx.Done():
			logger.Info("shutting down: finishing calls in flight", "grace", server.ShutdownGrace)
			err = srv.Shutdown(context.Background())
			if serr := <-served; err == nil {
				err = serr
			}
		}
		if cerr := store.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			logger.Info("stopped")
		}
		return err
	}
}

// loopback reports whether host names only this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
