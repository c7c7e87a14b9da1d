package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
)

// Example appends with an expected revision, loses a race on purpose, and
// reads the stream back.
func Example() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	// Open an order: the stream must not exist yet.
	res, err := store.Append(ctx, "order-42", annals.NoStream,
		annals.EventData{Type: "OrderPlaced", Data: []byte(`{"total":30}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println("placed; next expected revision:", res.NextExpected)

	// Pay for it, expecting the stream to be where we left it.
	res, err = store.Append(ctx, "order-42", res.NextExpected,
		annals.EventData{Type: "OrderPaid", Data: []byte(`{"amount":30}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println("paid; next expected revision:", res.NextExpected)

	// A writer that still believes the order is at revision 0 loses.
	_, err = store.Append(ctx, "order-42", annals.Exact(0),
		annals.EventData{Type: "OrderCancelled", Data: []byte(`{}`)})
	var conflict *annals.WrongExpectedRevisionError
	if errors.As(err, &conflict) {
		fmt.Printf("conflict on %s: expected %v, actual %v\n", conflict.Stream, conflict.Expected, conflict.Actual)
	}

	for e, err := range store.ReadStream(ctx, "order-42", annals.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("revision %d (position %d): %s %s\n", e.Revision, e.Position, e.Type, e.Data)
	}
	// Output:
	// placed; next expected revision: 0
	// paid; next expected revision: 1
	// conflict on order-42: expected 0, actual 1
	// revision 0 (position 1): OrderPlaced {"total":30}
	// revision 1 (position 2): OrderPaid {"amount":30}
}
