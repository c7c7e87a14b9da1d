package embedded_test

import (
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
