package storetest

import (
	"testing"

	"github.com/annals/annals"
)

// Limitations are the capability switches of the suite: the parts of the
// contract a store cannot keep because of how it reaches its data (a wire
// protocol, say), as River's driver suite asks a driver what it supports.
// The zero value is none: the whole contract, which Exercise runs. Each
// switch names the subtests it changes; the suite consults the switches
// and nothing else, so a store that passes Exercise keeps the whole
// contract, and one that passes ExerciseWith keeps all but what its
// switches say.
type Limitations struct {
	// JSONOrBinaryOnly: a content type other than application/json is
	// recorded as application/octet-stream (the bytes are kept).
	// Events/FieldsRoundTrip then expects application/octet-stream for its
	// text/plain event.
	JSONOrBinaryOnly bool
	// SystemStreamsWritable: appends may write $-prefixed streams and
	// event types, metastreams included, as a server lets its clients do.
	// The BadInput cases that expect them refused (systemStreamCases) are
	// skipped, naming this switch.
	SystemStreamsWritable bool
	// PropertyMetadata: a multi-stream append carries metadata as the
	// KurrentDB protocol's v2 properties (a JSON object of strings, read
	// back with "$schema.*" properties added), and a violation's state
	// as its codes (a deleted or tombstoned stream's revision is not
	// reported). Multi/EveryViolation then expects no revision for them.
	PropertyMetadata bool
	// TagsOnlyInQueries: stream and $all reads do not carry events' tags
	// (the KurrentDB protocol has no field for them); ReadQuery does.
	// DCB/TagsRoundTrip then checks them through ReadQuery only.
	TagsOnlyInQueries bool
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

// skipIfLimited skips the subtest when the store has the limitation
// named; every skip of the suite for a store's sake goes through here, so
// each one names its switch.
func skipIfLimited(t *testing.T, limited bool, name string) {
	t.Helper()
	if limited {
		t.Skipf("the store cannot keep this part of the contract (Limitations.%s)", name)
	}
}

// systemStreamCases are the bad-input cases that a store with
// SystemStreamsWritable accepts.
var systemStreamCases = map[string]bool{
	"SystemStream": true, "Metastream": true, "SystemEventType": true, "MetadataEventType": true, "TombstoneSystemStream": true,
}
