package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
)

const defaultListen = "127.0.0.1:2113"

func setupServe(fs *flag.FlagSet) runFunc {
	listen := fs.String("listen", defaultListen, "the `host:port` to serve gRPC and HTTP on")
	insecure := fs.Bool("insecure", false, "serve without TLS and without authentication, as KurrentDB's --insecure")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` (PEM); with --tls-key, serves TLS and requires credentials")
	tlsKey := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	tlsCA := fs.String("tls-ca", "", "CA certificate `file` (PEM) to verify client certificates, when a client presents one")
	adminPassword := fs.String("admin-password", "", "the password of the built-in admin user, with TLS (default: $ANNALS_ADMIN_PASSWORD, else changeit); "+
		"other local users see it in the process list: prefer --admin-password-file")
	adminPasswordFile := fs.String("admin-password-file", "", "a `file` holding the admin user's password (one line)")
	projections := fs.String("projection", "", "built-in projections to run, comma-separated `names` ("+strings.Join(builtinProjections, ", ")+
		"); served under /api/projections")
	readModels := fs.String("read-models", "", "the `directory` of the projections' read models with the embedded store (default: the --db directory followed by .read-models)")

	return func(ctx context.Context, e *env) error {
		host, _, err := net.SplitHostPort(*listen)
		if err != nil {
			return usagef("--listen %q: %v", *listen, err)
		}
		useTLS := *tlsCert != "" || *tlsKey != ""
		switch {
		case useTLS && *insecure:
			return usagef("--insecure and --tls-cert/--tls-key contradict each other")
		case useTLS && (*tlsCert == "" || *tlsKey == ""):
			return usagef("TLS needs both --tls-cert and --tls-key")
		case !useTLS && (*adminPassword != "" || *adminPasswordFile != ""):
			return usagef("--admin-password and --admin-password-file go with TLS (--tls-cert, --tls-key): without it there is no authentication")
		case !useTLS && *tlsCA != "":
			return usagef("--tls-ca goes with --tls-cert and --tls-key")
		case !useTLS && !*insecure && !loopback(host):
			return usagef("refusing to serve %s without TLS: anyone who reaches it could read and write every stream. "+
				"Serve on a loopback address, give --tls-cert and --tls-key, or pass --insecure to mean it", *listen)
		}
		names, err := projectionNames(*projections)
		if err != nil {
			return err
		}
		dir := *readModels
		switch {
		case dir != "" && e.postgres != "":
			return usagef("--read-models goes with the embedded store: with --postgres the read models are in PostgreSQL")
		case dir != "" && len(names) == 0:
			return usagef("--read-models goes with --projection")
		}
		if dir == "" {
			dir = strings.TrimRight(e.db, "/") + ".read-models"
		}
		logger := slog.New(slog.NewTextHandler(e.stderr, nil))
		tuneGC()
		opts := server.Options{Logger: logger}
		if useTLS {
			if opts.TLS, err = loadTLS(*tlsCert, *tlsKey, *tlsCA); err != nil {
				return err
			}
			password, err := adminPasswordOf(*adminPassword, *adminPasswordFile, logger)
			if err != nil {
				return err
			}
			opts.Credentials = server.AdminCredentials(password)
		} else if !loopback(host) {
			logger.Warn("INSECURE: NO TLS AND NO AUTHENTICATION ON " + *listen + ", WHICH IS NOT A LOOPBACK ADDRESS: " +
				"anyone who reaches it can read, write and delete every stream; serve TLS (--tls-cert, --tls-key) unless the network is yours alone")
		} else {
			logger.Warn("INSECURE: no TLS and no authentication; serving on a loopback address only")
		}
		limits := annals.Limits{AllowSystemStreams: true}.WithDefaults()
		if e.postgres == "" {
			if err := checkStoreDir(e.db, true); err != nil {
				return err
			}
		}
		store, err := openStore(ctx, e, limits, logger)
		if errors.Is(err, embedded.ErrLocked) {
			return fmt.Errorf("the store in %s is in use by another process: %w", e.db, err)
		}
		if err != nil {
			return err
		}
		// The projections this server runs, served under /api/projections
		// (annals projections); an empty registry without --projection.
		running, err := startProjections(ctx, e, store, names, dir, logger)
		if err != nil {
			store.Close()
			return err
		}
		opts.Projections = serveproj.Registry(running.registry)
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			running.stop(logger)
			store.Close()
			return err
		}
		opts.Limits = limits
		srv, err := server.New(store, opts)
		if err != nil {
			l.Close()
			running.stop(logger)
			store.Close()
			return err
		}
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
		running.stop(logger)
		if cerr := store.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			logger.Info("stopped")
		}
		return err
	}
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
