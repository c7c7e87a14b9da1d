package embedded

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// rawEdit opens the store's directory with pebble alone and runs fn on it.
func rawEdit(t *testing.T, dir string, fn func(db *pebble.DB, b *pebble.Batch)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{quietLog}})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	fn(db, b)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// toFormat1 rewrites a store as format 1 wrote it: no version key, and a
// global id index ('I' id -> location) instead of the per-stream one.
func toFormat1(t *testing.T, dir string) {
	rawEdit(t, dir, func(db *pebble.DB, b *pebble.Batch) {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableID}, UpperBound: []byte{tableID + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for valid := it.First(); valid; valid = it.Next() {
			_, id, err := parseIDKey(it.Key())
			if err != nil {
				t.Fatal(err)
			}
			mustSet(b, append([]byte{tableLegacyID}, id[:]...), it.Value())
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteRange([]byte{tableID}, []byte{tableID + 1}, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete([]byte{keyFormat}, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func countKeys(t *testing.T, dir string, table byte) int {
	n := 0
	rawEdit(t, dir, func(db *pebble.DB, _ *pebble.Batch) {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for valid := it.First(); valid; valid = it.Next() {
			n++
		}
		it.Close()
	})
	return n
}

// A store written with the global id index opens: its index is rebuilt per
// stream, retries of old appends are still recognised, and an old id is
// new to another stream.
func TestMigrateGlobalIDIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	in := []annals.EventData{{ID: uuid.New(), Type: "A"}, {ID: uuid.New(), Type: "B"}}
	first, err := s.Append(ctx, "order-1", annals.NoStream, in...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 { // several chunks
		if _, err := s.Append(ctx, "order-2", annals.Any, annals.EventData{Type: "Filler", Data: []byte(strings.Repeat("x", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	toFormat1(t, dir)
	if n := countKeys(t, dir, tableLegacyID); n != 202 {
		t.Fatalf("format 1 store has %d global id keys, want 202", n)
	}

	s, err = Open(dir, Options{Logger: quietLog})
	if err != nil {
		t.Fatalf("opening a format 1 store: %v", err)
	}
	again, err := s.Append(ctx, "order-1", annals.NoStream, in...)
	if err != nil || again != first {
		t.Fatalf("retry after the migration: %+v, %v; want the original %+v", again, err, first)
	}
	_, err = s.Append(ctx, "order-1", annals.Exact(1), in[0])
	if !errors.Is(err, annals.ErrDuplicateEventID) {
		t.Fatalf("an old id at another place in its stream: %v, want ErrDuplicateEventID", err)
	}
	if _, err := s.Append(ctx, "order-3", annals.NoStream, in...); err != nil {
		t.Fatalf("old ids in another stream: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, dir, tableLegacyID); n != 0 {
		t.Fatalf("%d global id keys left after the migration", n)
	}
	if n := countKeys(t, dir, tableID); n != 204 {
		t.Fatalf("%d per-stream id keys, want 204", n)
	}
}

// A store from a newer build is refused, not misread.
func TestOpenNewerFormat(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	rawEdit(t, dir, func(_ *pebble.DB, b *pebble.Batch) { mustSet(b, []byte{keyFormat}, []byte{formatVersion + 1}) })
	if _, err := Open(dir, Options{Logger: quietLog}); err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("Open of a newer format: %v, want a refusal naming the version", err)
	}
}
