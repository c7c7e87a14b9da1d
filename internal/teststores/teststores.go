// Package teststores opens real stores for the tests of the packages built
// on annals.Store: memory, embedded, a server (annals' own, in process,
// through the official KurrentDB client) and PostgreSQL.
package teststores

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/remote"
	"github.com/annals/annals/server"
	"github.com/jackc/pgx/v5"
)

// DefaultPostgresDSN is used without $ANNALS_POSTGRES_DSN.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Kinds names every store, for tests that run on each.
var Kinds = []string{"memory", "embedded", "server", "postgres"}

// hangGuard bounds the helpers' calls (a shutdown, a connection, a schema
// dropped): far above any normal run, only there so that a broken server
// or database fails the test instead of hanging it.
const hangGuard = 5 * time.Minute

// Open opens a fresh store of kind, closed when the test ends.
func Open(t testing.TB, kind string) annals.Store {
	t.Helper()
	switch kind {
	case "memory":
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	case "embedded":
		return Embedded(t)
	case "server":
		_, url := Serve(t)
		return Dial(t, url)
	case "postgres":
		return Postgres(t, Schema(t))
	}
	t.Fatalf("teststores: no store kind %q", kind)
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Embedded opens an embedded store in a temporary directory.
func Embedded(t testing.TB) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Serve serves a fresh embedded store on a loopback port, as annals serve
// does (system streams allowed, so clients may write metastreams), and
// returns it and the URL to dial.
func Serve(t testing.TB) (annals.Store, string) {
	t.Helper()
	limits := annals.Limits{AllowSystemStreams: true}.WithDefaults()
	store, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet(), Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, "kurrentdb://" + ServeStore(t, store, server.Options{Limits: limits}) + "?tls=false"
}

// ServeStore serves store with opts (quiet unless opts.Logger is set) on
// a loopback port until the test ends, and returns the host:port. The
// server is shut down before the cleanups registered earlier (closing the
// store) run.
func ServeStore(t testing.TB, store annals.Store, opts server.Options) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	srv, err := server.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return l.Addr().String()
}

// Dial connects to url with the official client (package remote).
func Dial(t testing.TB, url string) *remote.Store {
	t.Helper()
	s, err := remote.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresDSN is the test server's DSN.
func PostgresDSN() string {
	if dsn := os.Getenv("ANNALS_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

// Schema returns a fresh schema name, dropped when the test ends. Without a
// PostgreSQL server the test skips, unless CI=true: then it fails.
func Schema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is unreachable (CI=true, so this fails): %v", PostgresDSN(), err)
		}
		t.Skipf("PostgreSQL at %s is unreachable; set ANNALS_POSTGRES_DSN: %v", PostgresDSN(), err)
	}
	conn.Close(ctx)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "annals_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		conn, err := pgx.Connect(ctx, PostgresDSN())
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// Postgres opens a store on schema (see Schema), closed when the test
// ends, before the schema is dropped.
func Postgres(t testing.TB, schema string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := postgres.Open(ctx, PostgresDSN(), postgres.Options{Schema: schema, MaxConns: 4, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// SyncBuffer is a bytes.Buffer that goroutines may write while a test
// reads it (a server's log, a child's output).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Types lists the event types of stream, in order, space-separated; an
// absent stream lists none.
func Types(t testing.TB, s annals.Store, stream string) string {
	t.Helper()
	var out []string
	for ev, err := range s.ReadStream(context.Background(), stream, annals.ReadStreamOptions{}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Type)
	}
	return strings.Join(out, " ")
}
