package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// TestOpenConcurrently opens one new schema from several Stores at once, as
// several processes starting together would: every Open succeeds and each
// migration is applied once.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			stores[i], errs[i] = Open(ctx, testDSN(), Options{Schema: schema, MaxConns: 2, Logger: quietLogger()})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	var versions, applied int
	if err := admin(t).QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT version) FROM `+ident(schema, "migrations")).Scan(&applied, &versions); err != nil {
		t.Fatal(err)
	}
	if applied != len(migrations)-1 || versions != applied {
		t.Fatalf("%d migration rows (%d versions), want %d", applied, versions, len(migrations)-1)
	}
	// All four write to one log.
	for i, s := range stores {
		res, err := s.Append(context.Background(), "opened", annals.Any, annals.EventData{Type: "Opened"})
		if err != nil {
			t.Fatal(err)
		}
		if res.LastPosition != annals.Position(i+1) {
			t.Fatalf("store %d appended at %d, want %d", i, res.LastPosition, i+1)
		}
	}
}

func TestOpenBadSchema(t *testing.T) {
	for _, schema := range []string{"Annals", "1annals", "a-b", `a"b`, "annals_with_a_name_far_longer_than_forty_eight_bytes"} {
		_, err := Open(context.Background(), testDSN(), Options{Schema: schema})
		if !errors.Is(err, annals.ErrInvalidInput) {
			t.Errorf("Open with schema %q: %v, want ErrInvalidInput", schema, err)
		}
	}
}

// TestReopen: a Store opened on a schema with history carries on where it
// was (positions, revisions, recorded times).
func TestReopen(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	ctx := context.Background()
	s := openTest(t, schema, Options{})
	if _, err := s.Append(ctx, "r-1", annals.NoStream, annals.EventData{Type: "A"}, annals.EventData{Type: "B"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Append(ctx, "r-1", annals.Any, annals.EventData{Type: "C"}); !errors.Is(err, annals.ErrClosed) {
		t.Fatalf("append on a closed store: %v, want ErrClosed", err)
	}
	s = openTest(t, schema, Options{})
	if got := s.Position(); got != 2 {
		t.Fatalf("reopened at position %d, want 2", got)
	}
	res, err := s.Append(ctx, "r-1", annals.Exact(1), annals.EventData{Type: "C"})
	if err != nil {
		t.Fatal(err)
	}
	if res.LastPosition != 3 || res.NextExpected != annals.Exact(2) {
		t.Fatalf("append after reopening: %+v", res)
	}
}

// TestMigrateIDsPerStream: a schema made before ids were scoped to their
// stream (migration 1 only, a global unique id) opens, and then takes an
// id recorded in one stream into another while still recognising a retry.
func TestMigrateIDsPerStream(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	ctx := context.Background()
	s := ident(schema)
	id := uuid.New()
	for _, q := range []string{
		`CREATE SCHEMA ` + s,
		`CREATE TABLE ` + s + `.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
		fmt.Sprintf(migrations[1], s),
		`INSERT INTO ` + s + `.migrations (version) VALUES (1)`,
		`INSERT INTO ` + s + `.events VALUES (1, '` + id.String() + `', 'a', 0, 'A', 'application/json', '', '', now())`,
		`UPDATE ` + s + `.head SET position = 1, recorded = now()`,
		`INSERT INTO ` + s + `.streams VALUES ('a', true, 0, 1, false, false)`,
	} {
		if _, err := admin(t).Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st := openTest(t, schema, Options{})
	res, err := st.Append(ctx, "a", annals.NoStream, annals.EventData{ID: id, Type: "A"})
	if err != nil || res.LastPosition != 1 {
		t.Fatalf("retry of the old append: %+v, %v; want its position 1", res, err)
	}
	if res, err = st.Append(ctx, "b", annals.NoStream, annals.EventData{ID: id, Type: "A"}); err != nil || res.LastPosition != 2 {
		t.Fatalf("the same id in another stream after the migration: %+v, %v; want position 2", res, err)
	}
}
