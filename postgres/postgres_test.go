package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/storetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tests need a PostgreSQL server: ANNALS_POSTGRES_DSN, or the default
// below. Without one they skip, except under CI=true, where they fail.
const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var long = flag.Bool("long", false, "run the ordering proofs for longer")

// hangGuard bounds the tests' waits and calls: far above any normal run,
// only there so that a broken store fails its test instead of hanging
// it. No verdict depends on the machine's speed.
const hangGuard = 5 * time.Minute

func testDSN() string {
	if dsn := os.Getenv("ANNALS_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return defaultTestDSN
}

var (
	adminOnce sync.Once
	adminPool *pgxpool.Pool
	adminErr  error
)

// admin returns a pool for creating and dropping test schemas, or skips
// the test when there is no server.
func admin(t testing.TB) *pgxpool.Pool {
	t.Helper()
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		cfg, err := pgxpool.ParseConfig(testDSN())
		if err != nil {
			adminErr = err
			return
		}
		cfg.MaxConns = 2
		adminPool, adminErr = pgxpool.NewWithConfig(ctx, cfg)
		if adminErr == nil {
			adminErr = adminPool.Ping(ctx)
		}
	})
	if adminErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is unreachable (CI=true, so this fails): %v", testDSN(), adminErr)
		}
		t.Skipf("PostgreSQL at %s is unreachable; set ANNALS_POSTGRES_DSN (under CI=true this fails): %v", testDSN(), adminErr)
	}
	return adminPool
}

// TestMain skips the whole package, the runnable Example included, when
// there is no server, unless CI=true (then every test fails on its own).
func TestMain(m *testing.M) {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	conn, err := pgx.Connect(ctx, testDSN())
	if err == nil {
		conn.Close(ctx)
	}
	cancel()
	if err != nil && os.Getenv("CI") != "true" {
		fmt.Printf("skipping: PostgreSQL at %s is unreachable; set ANNALS_POSTGRES_DSN (under CI=true the tests fail): %v\n", testDSN(), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testSchema returns a fresh schema name, dropped when the test ends.
func testSchema(t testing.TB) string {
	t.Helper()
	pool := admin(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "annals_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+ident(schema)+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openTest opens a store on schema, closed when the test ends (before the
// schema is dropped: cleanups run last-registered first).
func openTest(t testing.TB, schema string, opts Options) *Store {
	t.Helper()
	opts.Schema = schema
	if opts.MaxConns == 0 {
		// Small: many tests run at once against one server.
		opts.MaxConns = 2
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := Open(ctx, testDSN(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) annals.Store {
		return openTest(t, testSchema(t), Options{})
	})
}

// TestConformanceSmallPages runs the suite with groups of at most two
// appends and read pages of 256 payload bytes, so group and page
// boundaries fall inside every subtest.
func TestConformanceSmallPages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	storetest.Exercise(t, func(t *testing.T) annals.Store {
		return openTest(t, testSchema(t), Options{GroupOps: 2, ReadPageBytes: 256})
	})
}

// Every connection plans each statement afresh: a generic plan cached
// while the tables were tiny (a sequential scan) made each append's id
// lookup grow with the log (28 ms at 30,000 events).
func TestConnectionsPlanEachRun(t *testing.T) {
	s := openTest(t, testSchema(t), Options{})
	ctx := context.Background()
	for name, pool := range map[string]*pgxpool.Pool{"reads": s.pool, "writer": s.writePool} {
		var mode string
		if err := pool.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "force_custom_plan" {
			t.Errorf("%s connections: plan_cache_mode %s, want force_custom_plan", name, mode)
		}
	}
}
