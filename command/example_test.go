package command_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
	"github.com/annals/annals/memory"
	"github.com/google/uuid"
)

// A handler loads the stream, decides, and appends at the revision it
// loaded. Domain errors come back as they are; a command id makes a
// client's retry return the first outcome instead of booking twice.
func ExampleHandler() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	h := &command.Handler[show, any, showEvent]{
		Store:   store,
		Decider: showDecider,
		Codec:   showCodec(codec.Options{}),
	}
	if _, err := h.Handle(ctx, "show-1", openShow{Capacity: 4}); err != nil {
		panic(err)
	}

	order := uuid.MustParse("0b8c3a52-9f5e-4c1d-8a7b-2e6f4d3c1b0a")
	res, err := h.Handle(ctx, "show-1", take{N: 3}, command.WithID(order))
	fmt.Println("taken:", res.State.Taken, "revision:", res.NextExpected, "err:", err)

	// The client did not hear back and sends the same order again.
	res, err = h.Handle(ctx, "show-1", take{N: 3}, command.WithID(order))
	fmt.Println("repeated:", res.Repeated, "taken:", res.State.Taken, "err:", err)

	_, err = h.Handle(ctx, "show-1", take{N: 2})
	fmt.Println("sold out:", errors.Is(err, errSoldOut), "conflict:", errors.Is(err, command.ErrConflict))
	// Output:
	// taken: 3 revision: 1 err: <nil>
	// repeated: true taken: 3 err: <nil>
	// sold out: true conflict: false
}
