package postgres

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// connectError connects as role to database through the test server and
// returns the refusal, which must be a PgError inside a ConnectError.
func connectError(t *testing.T, role, database, wantCode string) error {
	t.Helper()
	u, err := url.Parse(testDSN())
	if err != nil {
		t.Fatal(err)
	}
	u.User, u.Path = url.User(role), "/"+database
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, u.String())
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("connecting as %s to %s succeeded; want SQLSTATE %s", role, database, wantCode)
	}
	var pgErr *pgconn.PgError
	var connectErr *pgconn.ConnectError
	if !errors.As(err, &pgErr) || pgErr.Code != wantCode || !errors.As(err, &connectErr) {
		t.Fatalf("connecting as %s to %s: %v; want a ConnectError with SQLSTATE %s", role, database, err, wantCode)
	}
	return err
}

// A server that refuses connections for now (too many, or the database
// closed to connections) is retried like one that is down; a refusal for
// good (no such database) is not.
func TestRetryableConnectRefusals(t *testing.T) {
	pool := admin(t)
	ctx := context.Background()
	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	const role, db = "annals_retry_role", "annals_retry_db"
	pool.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	pool.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	exec("CREATE ROLE " + role + " LOGIN CONNECTION LIMIT 0")
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	exec("CREATE DATABASE " + db)
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS false")

	base, _ := url.Parse(testDSN())
	cases := []struct {
		name, role, db, code string
		want                 bool
	}{
		{"too many connections", role, "postgres", "53300", true},
		{"database not accepting connections", base.User.Username(), db, "55000", true},
		{"no such database", base.User.Username(), "annals_no_such_db", "3D000", false},
	}
	for _, c := range cases {
		err := connectError(t, c.role, c.db, c.code)
		if got := retryable(err); got != c.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", c.name, err, got, c.want)
		}
	}
}
