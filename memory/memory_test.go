package memory_test

import (
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) annals.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestIndexes(t *testing.T) {
	storetest.ExerciseIndexes(t, func(t *testing.T) annals.Store {
		s := memory.New(memory.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
