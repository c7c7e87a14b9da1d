package embedded_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) annals.Store {
		s, err := embedded.Open(t.TempDir(), embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConformanceTinyCaches runs the suite with a stream-head cache of two
// entries and small read pages, so every path that misses the cache (head
// derived from the index) and every page boundary is exercised.
func TestConformanceTinyCaches(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) annals.Store {
		s, err := embedded.Open(t.TempDir(), embedded.Options{
			StreamCacheEntries: 2,
			ReadPageBytes:      512,
			GroupOps:           3,
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); !errors.Is(err, embedded.ErrLocked) {
		t.Fatalf("second Open of one directory: got %v, want ErrLocked", err)
	}
}

func TestIndexes(t *testing.T) {
	storetest.ExerciseIndexes(t, func(t *testing.T) annals.Store {
		s, err := embedded.Open(t.TempDir(), embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
