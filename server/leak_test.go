package server_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// When PostgreSQL refuses the store's connections, a client is told the
// store is unavailable, and not the database's user or name (the server
// log has them).
func TestStoreFailureNamesNoDatabase(t *testing.T) {
	schema := teststores.Schema(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, teststores.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := schema + "_role"
	u, _ := url.Parse(teststores.PostgresDSN())
	database := strings.TrimPrefix(u.Path, "/")
	for _, sql := range []string{"CREATE ROLE " + role + " LOGIN", `GRANT CREATE ON DATABASE "` + database + `" TO ` + role} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), teststores.PostgresDSN())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		for _, sql := range []string{`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`, "DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := c.Exec(context.Background(), sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	})
	u.User = url.User(role)
	store, err := postgres.Open(ctx, u.String(), postgres.Options{Schema: schema, MaxConns: 2, RetryWindow: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var log teststores.SyncBuffer
	addr := teststores.ServeStore(t, store, server.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})

	// The role may no longer connect; its connections are cut.
	for _, sql := range []string{"ALTER ROLE " + role + " CONNECTION LIMIT 0",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = appendRaw(ctx, conn, options("order-1"), proposed("Placed", []byte(`{}`)))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || strings.Contains(st.Message(), role) || strings.Contains(st.Message(), database) {
		t.Fatalf("append while PostgreSQL refuses the store: %v; want Unavailable naming neither the user nor the database", err)
	}
	batch := openBatch(t, ctx, conn)
	send(t, batch, uuid.New(), batchOptions("order-1", "any"), uuid.New())
	_, resp := recvBatch(t, batch)
	if e := resp.GetError(); e == nil || codes.Code(e.Code) != codes.Unavailable || strings.Contains(e.Message, role) || strings.Contains(e.Message, database) {
		t.Fatalf("BatchAppend while PostgreSQL refuses the store: %v; want Unavailable naming neither the user nor the database", resp)
	}
	if !strings.Contains(log.String(), role) {
		t.Fatalf("the server log does not have the cause:\n%s", log.String())
	}
}
