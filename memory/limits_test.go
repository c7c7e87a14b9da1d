package memory_test

import (
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
)

// The store reports the limits it enforces: its options', with the
// defaults filled in.
func TestLimits(t *testing.T) {
	s := memory.New(memory.Options{Limits: annals.Limits{MaxAppendEvents: 3, AllowSystemStreams: true}})
	defer s.Close()
	want := annals.Limits{MaxAppendEvents: 3, AllowSystemStreams: true}.WithDefaults()
	if got := s.Limits(); got != want {
		t.Fatalf("Limits() = %+v, want %+v", got, want)
	}
}
