package storetest

import (
	"testing"

	"github.com/annals/annals"
)

// Limitations are the parts of the contract a store cannot keep because
// of how it reaches its data (a wire protocol, say); the zero value is
// none: the whole contract.
type Limitations struct {
	// JSONOrBinaryOnly: a content type other than application/json is
	// recorded as application/octet-stream (the bytes are kept).
	JSONOrBinaryOnly bool
	// SystemStreamsWritable: appends may write $-prefixed streams and
	// event types, metastreams included, as a server lets its clients do;
	// the cases that expect them refused are skipped.
	SystemStreamsWritable bool
}

// ExerciseWith runs the conformance suite as Exercise does, without the
// parts of the contract lim says the store cannot keep.
func ExerciseWith(t *testing.T, newStore func(t *testing.T) annals.Store, lim Limitations) {
	t.Helper()
	Exercise(t, func(t *testing.T) annals.Store { return &limited{newStore(t), lim} })
}

// limited is a store that carries its limitations to the subtests.
type limited struct {
	annals.Store
	lim Limitations
}

func limitationsOf(s annals.Store) Limitations {
	if l, ok := s.(*limited); ok {
		return l.lim
	}
	return Limitations{}
}

// systemStreamCases are the bad-input cases that a store with
// SystemStreamsWritable accepts.
var systemStreamCases = map[string]bool{
	"SystemStream": true, "Metastream": true, "SystemEventType": true, "MetadataEventType": true, "TombstoneSystemStream": true,
}
