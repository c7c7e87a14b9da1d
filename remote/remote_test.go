package remote_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/remote"
	"github.com/annals/annals/server"
	"github.com/annals/annals/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serveFresh serves a fresh store of kind through an annals server and
// dials it with package remote.
func serveFresh(t *testing.T, kind string) annals.Store {
	t.Helper()
	// As annals serve does: a client writes metadata as events of the
	// metastream, a $ stream.
	limits := annals.Limits{AllowSystemStreams: true}
	var store annals.Store
	switch kind {
	case "memory":
		store = memory.New(memory.Options{Limits: limits})
	case "embedded":
		s, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet(), Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		store = s
	case "postgres":
		store = openPostgres(t, limits)
	default:
		t.Fatalf("no store kind %q", kind)
	}
	t.Cleanup(func() { store.Close() })
	addr := teststores.ServeStore(t, store, server.Options{Limits: limits.WithDefaults()})
	s, err := remote.Dial("kurrentdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// One answered call: the server is serving before the test may end
	// (a Shutdown that comes before Serve has its listener leaves Serve
	// running).
	for _, err := range s.ReadAll(context.Background(), annals.ReadAllOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// openPostgres opens a PostgreSQL store in a fresh schema with limits (a
// server's), or skips without a server as teststores.Schema does.
func openPostgres(t *testing.T, limits annals.Limits) annals.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := postgres.Open(ctx, teststores.PostgresDSN(), postgres.Options{
		Schema: teststores.Schema(t), Limits: limits, MaxConns: postgresConns, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	// hangGuard bounds opening a store: far above a normal open, so that
	// an unreachable database fails the test instead of hanging it.
	hangGuard = 5 * time.Minute
	// postgresConns bounds each PostgreSQL store's pool, as
	// teststores.Postgres does: the suite's subtests run in parallel.
	postgresConns = 4
)

// The conformance suite through the protocol, on the stores behind a
// server, with what the protocol cannot carry switched off (package doc).
func TestConformance(t *testing.T) {
	for _, kind := range []string{"memory", "embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			storetest.ExerciseWith(t, func(t *testing.T) annals.Store { return serveFresh(t, kind) }, limitations)
		})
	}
}

// Limitations are what the protocol cannot carry (package doc).
var limitations = storetest.Limitations{JSONOrBinaryOnly: true, SystemStreamsWritable: true, PropertyMetadata: true, TagsOnlyInQueries: true}

// A call that ends on its context's deadline is context.DeadlineExceeded,
// as on a local store; a server that cannot be reached is ErrUnreachable,
// named by its address.
func TestContextAndUnreachableErrors(t *testing.T) {
	s := serveFresh(t, "memory")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := s.Append(ctx, "late-1", annals.Any, annals.EventData{Type: "T"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an append past its deadline: %v, want context.DeadlineExceeded", err)
	}
	for _, err := range s.ReadStream(ctx, "late-1", annals.ReadStreamOptions{}) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a read past its deadline: %v, want context.DeadlineExceeded", err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	gone, err := remote.Dial("kurrentdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	_, err = gone.Append(context.Background(), "s-1", annals.Any, annals.EventData{Type: "T"})
	if !errors.Is(err, remote.ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach server at "+addr) {
		t.Errorf("an append to nothing: %v, want ErrUnreachable naming %s", err, addr)
	}
}

// stalledStore is a store whose appends reach it and then wait for their
// context to end, or fail with fail if it is set.
type stalledStore struct {
	annals.Store
	arrived chan struct{}
	fail    atomic.Pointer[error] // set between calls
}

func (s *stalledStore) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	if err := s.fail.Load(); err != nil {
		return annals.AppendResult{}, *err
	}
	s.arrived <- struct{}{}
	<-ctx.Done()
	return annals.AppendResult{}, ctx.Err()
}

// An append that reached the server and ended without its answer — its
// caller gave up, or the server's store could not tell — may have been
// written: annals.ErrOutcomeUnknown, still matching the cause. An answer
// the server gave is what it was.
func TestOutcomeUnknown(t *testing.T) {
	inner := memory.New(memory.Options{})
	t.Cleanup(func() { inner.Close() })
	stalled := &stalledStore{Store: inner, arrived: make(chan struct{})}
	addr := teststores.ServeStore(t, stalled, server.Options{})
	s, err := remote.Dial("kurrentdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stalled.arrived; cancel() }()
	_, err = s.Append(ctx, "stalled-1", annals.Any, annals.EventData{Type: "T"})
	if !errors.Is(err, annals.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Errorf("an append given up once the server had it: %v, want ErrOutcomeUnknown and context.Canceled", err)
	}

	lost := annals.OutcomeUnknown(errors.New("the connection was lost during COMMIT"))
	stalled.fail.Store(&lost)
	_, err = s.Append(context.Background(), "stalled-1", annals.Any, annals.EventData{Type: "T"})
	if !errors.Is(err, annals.ErrOutcomeUnknown) {
		t.Errorf("an append whose store could not tell: %v, want ErrOutcomeUnknown", err)
	}
	var refused error = &annals.WrongExpectedRevisionError{Stream: "stalled-1", Expected: annals.NoStream, Actual: annals.Exact(0)}
	stalled.fail.Store(&refused)
	_, err = s.Append(context.Background(), "stalled-1", annals.NoStream, annals.EventData{Type: "T"})
	if !errors.Is(err, annals.ErrWrongExpectedRevision) || errors.Is(err, annals.ErrOutcomeUnknown) {
		t.Errorf("an append the server refused: %v, want the refusal alone", err)
	}
}
