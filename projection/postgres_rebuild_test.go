package projection_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgVersioned counts per stream in an unqualified table of the
// projection's own schema (created by Setup, with the version).
func pgVersioned(version string, fx *effects) projection.Projection[pgx.Tx] {
	return projection.Projection[pgx.Tx]{
		Name: "counts",
		Setup: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS counts (stream text PRIMARY KEY, n bigint NOT NULL, sum bigint NOT NULL);
CREATE TABLE IF NOT EXISTS meta (version text NOT NULL);
DELETE FROM meta; INSERT INTO meta VALUES ('`+version+`')`)
			return err
		},
		Handle: func(ctx context.Context, tx pgx.Tx, e annals.Event) error {
			fx.note(ctx, e)
			_, err := tx.Exec(ctx, `INSERT INTO counts AS c (stream, n, sum) VALUES ($1, 1, $2)
ON CONFLICT (stream) DO UPDATE SET n = c.n + 1, sum = c.sum + EXCLUDED.sum`, e.Stream, int64(e.Position))
			return err
		},
		Policy: projection.ErrorPolicy{Backoff: time.Millisecond},
	}
}

func pgQuery(target *projection.Postgres) (version string, total uint64, model map[string]string, err error) {
	model = map[string]string{}
	err = target.Query(context.Background(), "counts", func(ctx context.Context, tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT version FROM meta`).Scan(&version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT stream, n, sum FROM counts`)
		if err != nil {
			return err
		}
		var stream string
		var n, sum uint64
		_, err = pgx.ForEachRow(rows, []any{&stream, &n, &sum}, func() error {
			model[stream] = fmt.Sprintf("%d:%d", n, sum)
			total += n
			return nil
		})
		return err
	})
	return version, total, model, err
}

func schemaExists(t *testing.T, pool *pgxpool.Pool, schema string) bool {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// Blue/green on PostgreSQL, store and target: writers append and queries
// (Target.Query) run throughout; no query fails or sees a half-built
// model; the old generation's schema is dropped at the switch; the
// switched model is a clean build's; side effects fire once.
func TestPostgresRebuildUnderLoad(t *testing.T) {
	ctx := context.Background()
	target, pool, _ := pgTarget(t)
	store := teststores.Postgres(t, teststores.Schema(t))
	appendEvents(t, store, 1000, 0)
	var fx effects
	pr := started(t, store, target, pgVersioned("1", &fx), projection.Options{BatchEvents: 50})
	caughtUp(t, pr, head(t, store))
	old, err := target.ModelSchema(ctx, "counts")
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(store, 10, 0, func() (string, uint64, error) {
		version, total, _, err := pgQuery(target)
		return version, total, err
	})

	pr.Pause()
	if err := pr.RebuildWith(ctx, pgVersioned("2", &fx)); err != nil {
		t.Fatal(err)
	}
	growWhilePaused(t, store, pr)
	pr.Resume()
	switched(t, pr)
	loadAfterSwitch(t, store, load)
	queries, switches, err := load.finish()
	if err != nil {
		t.Fatal(err)
	}
	if switches != 1 {
		t.Errorf("queries saw %d switches, want 1", switches)
	}
	h := head(t, store)
	caughtUp(t, pr, h)
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	if schemaExists(t, pool, old) {
		t.Errorf("schema %s of generation 0 still there", old)
	}
	version, _, model, err := pgQuery(target)
	if err != nil || version != "2" {
		t.Fatalf("after the switch: version %q, %v", version, err)
	}
	sameModel(t, "switched model", model, fold(t, store, nil))
	fx.check(t, h)
	t.Logf("%d events, %d queries during the rebuild", h, queries)
}
