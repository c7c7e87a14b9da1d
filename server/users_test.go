package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/server"
)

// streamEvents reads all of stream from store (none if it does not exist).
func streamEvents(t *testing.T, store annals.Store, stream string) []annals.Event {
	t.Helper()
	var out []annals.Event
	for e, err := range store.ReadStream(context.Background(), stream, annals.ReadStreamOptions{}) {
		if err != nil {
			return out
		}
		out = append(out, e)
	}
	return out
}

// checkAdminRecords checks the admin user's records are in store once each,
// as KurrentDB writes them.
func checkAdminRecords(t *testing.T, store annals.Store) {
	t.Helper()
	users := streamEvents(t, store, "$users")
	if len(users) != 1 || users[0].Type != "$User" || string(users[0].Data) != "admin" || users[0].ContentType != annals.ContentTypeBinary {
		t.Fatalf("$users: %+v", users)
	}
	admin := streamEvents(t, store, "$user-admin")
	var data struct {
		LoginName string   `json:"loginName"`
		FullName  string   `json:"fullName"`
		Groups    []string `json:"groups"`
	}
	if len(admin) != 1 || admin[0].Type != "$UserCreated" || json.Unmarshal(admin[0].Data, &data) != nil ||
		data.LoginName != "admin" || data.FullName != "KurrentDB Administrator" || len(data.Groups) != 1 || data.Groups[0] != "$admins" {
		t.Fatalf("$user-admin: %+v", admin)
	}
	md, rev, err := store.StreamMetadata(context.Background(), "$user-admin")
	if err != nil || rev != annals.Exact(0) {
		t.Fatalf("$$$user-admin: %v at %v", err, rev)
	}
	var acl map[string]string
	if json.Unmarshal(md.ACL, &acl) != nil || acl["$w"] != "$admins" || acl["$d"] != "$admins" || acl["$mw"] != "$admins" || len(acl) != 3 {
		t.Fatalf("$user-admin's ACL %s", md.ACL)
	}
}

// A server that checks credentials writes the admin user's records, as
// KurrentDB does with authentication on; a restart adds nothing. Without
// credentials (KurrentDB's --insecure) there are no users.
func TestAdminUserRecords(t *testing.T) {
	store, _ := serveSystem(t, server.Options{})
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("an insecure server wrote %d events", n)
	}
	for range 2 {
		teststores.ServeStore(t, store, server.Options{Limits: annals.Limits{AllowSystemStreams: true}, Credentials: server.AdminCredentials("changeit")})
		checkAdminRecords(t, store)
	}
}

// Nodes starting together on one PostgreSQL schema write each record once.
func TestAdminUserRecordsNodesTogether(t *testing.T) {
	schema := teststores.Schema(t)
	limits := annals.Limits{AllowSystemStreams: true}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const nodes = 3
	stores := make([]*postgres.Store, nodes)
	for i := range stores {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s, err := postgres.Open(ctx, teststores.PostgresDSN(), postgres.Options{Schema: schema, MaxConns: 4, Logger: quiet, Limits: limits})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := server.New(s, server.Options{Logger: quiet, Limits: limits, Credentials: server.AdminCredentials("changeit")})
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		}()
	}
	wg.Wait()
	checkAdminRecords(t, stores[0])
}
