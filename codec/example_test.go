package codec_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/memory"
)

type Event interface{ isEvent() }

// SeatsReserved is at schema version 2: version 1 had one seat per event
// and no count.
type SeatsReserved struct {
	Reservation string `json:"reservation"`
	Seats       int    `json:"seats"`
}

func (SeatsReserved) isEvent() {}

// A registry names Go types in the store, and upcasts events written by
// older versions of a type on read.
func ExampleRegister() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	// Written long ago, by version 1 of the program.
	store.Append(ctx, "conference-1", annals.Any, annals.EventData{
		Type: "SeatsReserved", Data: []byte(`{"reservation":"r1"}`),
	})

	events := codec.New[Event](codec.Options{})
	codec.MustRegister[SeatsReserved](events, "SeatsReserved",
		codec.Version(2),
		codec.Upcast(1, func(data []byte) ([]byte, error) {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			m["seats"] = 1
			return json.Marshal(m)
		}))

	// Written today.
	today, _ := events.Encode(SeatsReserved{Reservation: "r2", Seats: 3})
	store.Append(ctx, "conference-1", annals.Any, today)

	for rec, err := range store.ReadStream(ctx, "conference-1", annals.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		e, _, err := events.Decode(rec)
		if err != nil {
			panic(err)
		}
		fmt.Printf("metadata %q: %#v\n", rec.Metadata, e)
	}
	// Output:
	// metadata "": codec_test.SeatsReserved{Reservation:"r1", Seats:1}
	// metadata "{\"schemaVersion\":2}": codec_test.SeatsReserved{Reservation:"r2", Seats:3}
}
