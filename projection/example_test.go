package projection_test

import (
	"context"
	"fmt"
	"strconv"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/projection"
)

// A read model of how many items each order holds, kept by a projector in
// the in-memory target. The handler reads and writes through the
// transaction's KV; the projector stores the checkpoint in the same
// transaction.
func Example() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	for _, e := range []struct{ stream, typ string }{
		{"order-1", "ItemAdded"}, {"order-1", "ItemAdded"}, {"cart-9", "ItemAdded"},
		{"order-2", "ItemAdded"}, {"order-1", "ItemRemoved"},
	} {
		store.Append(ctx, e.stream, annals.Any, annals.EventData{Type: e.typ, Data: []byte(`{}`)})
	}

	target := projection.NewMemory()
	items := projection.Projection[projection.KV]{
		Name:   "order-items",
		Filter: annals.CategoryFilter("order"),
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			v, _, err := kv.Get([]byte(e.Stream))
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(v))
			switch e.Type {
			case "ItemAdded":
				n++
			case "ItemRemoved":
				n--
			}
			return kv.Set([]byte(e.Stream), []byte(strconv.Itoa(n)))
		},
		Reset: func(ctx context.Context, kv projection.KV) error { return kv.DeletePrefix(nil) },
	}
	pr, err := projection.New(store, target, items, projection.Options{})
	if err != nil {
		panic(err)
	}
	pr.Start(ctx)
	// Waits on the projector's commits, for a settled output.
	if err := pr.WaitFor(ctx, 5); err != nil {
		panic(err)
	}
	if err := pr.Stop(); err != nil {
		panic(err)
	}

	target.Scan("order-items", nil, func(k, v []byte) bool {
		fmt.Printf("%s: %s items\n", k, v)
		return true
	})
	st, _ := pr.Status(ctx)
	fmt.Println("position", st.Position, "lag", st.Lag, "state", st.State)
	// Output:
	// order-1: 1 items
	// order-2: 1 items
	// position 5 lag 0 state stopped
}
