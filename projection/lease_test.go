package projection_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// countingProjection is pgProjection counting the events this instance
// applied in n.
func countingProjection(name, table string, n *atomic.Int64) projection.Projection[pgx.Tx] {
	p := pgProjection(name, table, nil)
	inner := p.Handle
	p.Handle = func(ctx context.Context, tx pgx.Tx, e annals.Event) error {
		n.Add(1)
		return inner(ctx, tx, e)
	}
	return p
}

// Two instances of one projection, each with a pool of its own (two
// sessions, as two processes would have): only the lease holder applies,
// the other waits on standby and takes over when the first stops.
func TestPostgresSingleInstance(t *testing.T) {
	first, pool, table := pgTarget(t)
	pool2, err := pgxpool.New(context.Background(), teststores.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool2.Close)
	second, err := projection.NewPostgres(context.Background(), pool2, first.Schema())
	if err != nil {
		t.Fatal(err)
	}
	store := teststores.Postgres(t, teststores.Schema(t))
	appendEvents(t, store, 300, 0)

	var n1, n2 atomic.Int64
	a, err := projection.New(store, first, countingProjection("counts", table, &n1), projection.Options{BatchEvents: 10})
	if err != nil {
		t.Fatal(err)
	}
	b, err := projection.New(store, second, countingProjection("counts", table, &n2), projection.Options{BatchEvents: 10})
	if err != nil {
		t.Fatal(err)
	}
	a.Start(context.Background())
	waitFor(t, "the first instance to apply", func() bool { return n1.Load() > 0 })
	b.Start(context.Background())
	waitFor(t, "the second instance to be on standby", func() bool { return state(t, b).State == projection.Standby })

	// Both run; events keep coming; only the first applies them.
	appendEvents(t, store, 300, 1)
	caughtUp(t, a, head(t, store))
	// Several polls of the lease pass, none of which may let b in.
	time.Sleep(3 * projection.LeasePollInterval)
	if got := n2.Load(); got != 0 {
		t.Fatalf("the standby instance applied %d events while the first ran", got)
	}
	if st := state(t, b); st.State != projection.Standby {
		t.Fatalf("second instance: state %v, want standby", st.State)
	}
	if st := state(t, a); st.State != projection.Running {
		t.Fatalf("first instance: state %v, want running", st.State)
	}

	// The first stops: the second takes over and applies what follows.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	applied := n1.Load()
	appendEvents(t, store, 300, 2)
	caughtUp(t, b, head(t, store))
	if st := state(t, b); st.State != projection.Running {
		t.Fatalf("second instance after the takeover: state %v, want running", st.State)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if n1.Load() != applied {
		t.Fatalf("the first instance applied events after Stop")
	}
	if n2.Load() == 0 {
		t.Fatalf("the second instance applied nothing after the takeover")
	}
	if total := n1.Load() + n2.Load(); total != int64(head(t, store)) {
		t.Fatalf("%d events applied in all, want %d", total, head(t, store))
	}
	sameModel(t, "after the takeover", dumpPostgres(t, pool, table), fold(t, store, nil))
}

// A standby instance refuses Reset: the running instance is the writer.
func TestPostgresStandbyReset(t *testing.T) {
	target, _, table := pgTarget(t)
	store := newMemoryStore(t)
	appendEvents(t, store, 10, 0)
	var n1, n2 atomic.Int64
	a, err := projection.New(store, target, countingProjection("counts", table, &n1), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := projection.New(store, target, countingProjection("counts", table, &n2), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Start(context.Background())
	defer a.Stop()
	caughtUp(t, a, 10)
	b.Start(context.Background())
	defer b.Stop()
	waitFor(t, "the second instance to be on standby", func() bool { return state(t, b).State == projection.Standby })
	if err := b.Reset(context.Background()); err != projection.ErrStandby {
		t.Fatalf("Reset on standby: %v, want ErrStandby", err)
	}
}

// The pebble target needs no lease: its directory is locked while open,
// so a second OpenPebble of it fails (TestCrashPebble checks it from
// another process).
func TestPebbleExclusive(t *testing.T) {
	dir := t.TempDir()
	p, err := projection.OpenPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if q, err := projection.OpenPebble(dir); err == nil {
		q.Close()
		t.Fatal("a second OpenPebble of an open directory succeeded")
	}
}
