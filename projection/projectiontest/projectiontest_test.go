package projectiontest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/projection/projectiontest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMemoryTarget(t *testing.T) {
	projectiontest.Exercise(t, func(t *testing.T) projection.Target[projection.KV] {
		return projection.NewMemory()
	}, projectiontest.Options[projection.KV]{Model: projectiontest.KV()})
}

func TestPebbleTarget(t *testing.T) {
	projectiontest.Exercise(t, func(t *testing.T) projection.Target[projection.KV] {
		p, err := projection.OpenPebble(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}, projectiontest.Options[projection.KV]{Model: projectiontest.KV()})
}

func TestPostgresTarget(t *testing.T) {
	var apps sync.Map // *projection.Postgres -> its pool's application_name
	projectiontest.Exercise(t, func(t *testing.T) projection.Target[pgx.Tx] {
		target, app := postgresTarget(t)
		apps.Store(target, app)
		return target
	}, projectiontest.Options[pgx.Tx]{
		Model: pgModel,
		BreakLeases: func(t *testing.T, target projection.Target[pgx.Tx]) {
			app, _ := apps.Load(target)
			terminate(t, app.(string))
		},
	})
}

// postgresTarget opens the PostgreSQL target in a fresh schema on a pool
// of its own, named by a fresh application_name so that its sessions can
// be found (and ended) without touching anyone else's.
func postgresTarget(t *testing.T) (*projection.Postgres, string) {
	schema := teststores.Schema(t)
	ctx := context.Background()
	b := make([]byte, 8)
	rand.Read(b)
	app := "projectiontest_" + hex.EncodeToString(b)
	cfg, err := pgxpool.ParseConfig(teststores.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	target, err := projection.NewPostgres(ctx, pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	// Before the pool closes and the schema is dropped: the model schemas
	// live beside the target's.
	t.Cleanup(func() {
		if err := target.DropModels(context.Background()); err != nil {
			t.Errorf("dropping the read models: %v", err)
		}
	})
	return target, app
}

// terminate ends every session of the pool named app, the lease's
// included.
func terminate(t *testing.T, app string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, teststores.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no session of %s to end", app)
	}
}

// pgModel keeps the suite's keys in a table of the slot's model schema
// (the first of the transaction's search_path).
var pgModel = projectiontest.Model[pgx.Tx]{
	Put: func(ctx context.Context, tx pgx.Tx, key, value string) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS projectiontest_kv (k text PRIMARY KEY, v text NOT NULL)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO projectiontest_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, key, value)
		return err
	},
	Get: func(ctx context.Context, tx pgx.Tx, key string) (string, bool, error) {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass(format('%I.projectiontest_kv', current_schema())) IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return "", false, err
		}
		var v string
		err := tx.QueryRow(ctx, `SELECT v FROM projectiontest_kv WHERE k = $1`, key).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", false, nil
		}
		return v, err == nil, err
	},
}
