package projection_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgTarget opens the PostgreSQL target in a fresh schema (dropped when
// the test ends) with the tests' read-model table, or skips without a
// server (fails under CI=true).
func pgTarget(t *testing.T) (*projection.Postgres, *pgxpool.Pool, string) {
	t.Helper()
	schema := teststores.Schema(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, teststores.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	target, err := projection.NewPostgres(ctx, pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	// Before the pool closes and the schema is dropped.
	t.Cleanup(func() {
		if err := target.DropModels(context.Background()); err != nil {
			t.Errorf("dropping the read models: %v", err)
		}
	})
	table := pgx.Identifier{schema, "counts"}.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (stream text PRIMARY KEY, n bigint NOT NULL, sum bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return target, pool, table
}

func pgProjection(name, table string, f *annals.Filter) projection.Projection[pgx.Tx] {
	return projection.Projection[pgx.Tx]{
		Name:   name,
		Filter: f,
		Handle: func(ctx context.Context, tx pgx.Tx, e annals.Event) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` AS c (stream, n, sum) VALUES ($1, 1, $2)
ON CONFLICT (stream) DO UPDATE SET n = c.n + 1, sum = c.sum + EXCLUDED.sum`, e.Stream, int64(e.Position))
			return err
		},
		Reset: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM `+table)
			return err
		},
		Policy: projection.ErrorPolicy{Backoff: time.Millisecond},
	}
}

func dumpPostgres(t testing.TB, pool *pgxpool.Pool, table string) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT stream, n, sum FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var stream string
	var n, sum uint64
	_, err = pgx.ForEachRow(rows, []any{&stream, &n, &sum}, func() error {
		out[stream] = fmt.Sprintf("%d:%d", n, sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExactlyOncePostgres(t *testing.T) {
	target, pool, table := pgTarget(t)
	store := newMemoryStore(t)
	f := annals.CategoryFilter("order")
	exactlyOnce(t, 150*time.Millisecond, store, target, pgProjection("counts", table, f))

	clean, cleanPool, cleanTable := pgTarget(t)
	runToEnd(t, store, clean, pgProjection("counts", cleanTable, f))
	want := fold(t, store, f)
	sameModel(t, "clean run", dumpPostgres(t, cleanPool, cleanTable), want)
	sameModel(t, "after restarts", dumpPostgres(t, pool, table), want)
}

// The PostgreSQL target on the PostgreSQL store, two projectors of one
// name started together on one pool: the lease lets one apply while the
// other waits (both sessions are the pool's, as two processes' would be),
// and the effect is exactly once.
func TestPostgresTwoWriters(t *testing.T) {
	target, pool, table := pgTarget(t)
	store := teststores.Postgres(t, teststores.Schema(t))
	appendEvents(t, store, 600, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	var prs []*projection.Projector[pgx.Tx]
	for range 2 {
		pr, err := projection.New(store, target, pgProjection("counts", table, nil), projection.Options{BatchEvents: 1 + rng.IntN(20)})
		if err != nil {
			t.Fatal(err)
		}
		pr.Start(context.Background())
		prs = append(prs, pr)
	}
	// Whichever took the lease catches up; the other waits.
	h := head(t, store)
	waitFor(t, "one projector to reach the head", func() bool {
		return prs[0].Position() >= h || prs[1].Position() >= h
	})
	standby := 0
	for _, pr := range prs {
		if state(t, pr).State == projection.Standby {
			standby++
		}
	}
	if standby != 1 {
		t.Fatalf("%d projectors on standby, want 1", standby)
	}
	for _, pr := range prs {
		if err := pr.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	sameModel(t, "two writers", dumpPostgres(t, pool, table), fold(t, store, nil))
}

func TestPostgresParkAndReset(t *testing.T) {
	target, pool, table := pgTarget(t)
	store := newMemoryStore(t)
	appendEvents(t, store, 200, 0)
	p := pgProjection("park", table, nil)
	inner := p.Handle
	p.Handle = func(ctx context.Context, tx pgx.Tx, e annals.Event) error {
		if e.Position == 42 {
			// A failing statement aborts the transaction: the projector
			// must roll back and redo the batch without it.
			_, err := tx.Exec(ctx, `SELECT 1/0`)
			return err
		}
		return inner(ctx, tx, e)
	}
	p.Policy = projection.ErrorPolicy{MaxRetries: 1, Backoff: time.Millisecond, OnFailure: projection.Park}
	pr, err := projection.New(store, target, p, projection.Options{BatchEvents: 30})
	if err != nil {
		t.Fatal(err)
	}
	pr.Start(context.Background())
	caughtUp(t, pr, 200)
	parked, err := pr.ParkedEvents(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Position != 42 || parked[0].Attempts != 2 || parked[0].Error == "" {
		t.Fatalf("parked %+v", parked)
	}
	if st := state(t, pr); st.Parked != 1 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	want := foldUpTo(t, store, 200)
	var e42 annals.Event
	for e := range store.ReadAll(context.Background(), annals.ReadAllOptions{From: 42, Limit: 1}) {
		e42 = e
	}
	n, sum := parseCount(want[e42.Stream])
	want[e42.Stream] = fmtCount(n-1, sum-42)
	sameModel(t, "parked", dumpPostgres(t, pool, table), want)

	if err := pr.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, pr, 200)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	if cp, _ := target.Load(context.Background(), "park"); cp != (projection.Checkpoint{Position: 200, Parked: 1}) {
		t.Fatalf("checkpoint after the rebuild %+v", cp)
	}
	sameModel(t, "rebuilt", dumpPostgres(t, pool, table), want)
}
