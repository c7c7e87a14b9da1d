package projection_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/projection"
)

// A blue/green rebuild with a new definition: version 1 of a read model
// keeps the item count per order; version 2 also keeps its last event
// type. RebuildWith builds version 2 beside version 1, which serves
// queries meanwhile, then switches to it at once.
func ExampleProjector_RebuildWith() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	for _, typ := range []string{"ItemAdded", "ItemAdded", "ItemRemoved"} {
		store.Append(ctx, "order-1", annals.Any, annals.EventData{Type: typ, Data: []byte(`{}`)})
	}
	target := projection.NewMemory()
	var notified atomic.Int64
	version := func(v int) projection.Projection[projection.KV] {
		return projection.Projection[projection.KV]{
			Name: "orders",
			Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
				if e.Type == "ItemRemoved" && !projection.Replaying(ctx) {
					// A side effect: not fired again by the rebuild,
					// which replays what version 1 handled.
					notified.Add(1)
				}
				n := 0
				if v, ok, _ := kv.Get([]byte(e.Stream)); ok {
					fmt.Sscan(strings.Fields(string(v))[0], &n)
				}
				if e.Type == "ItemAdded" {
					n++
				} else {
					n--
				}
				row := fmt.Sprint(n)
				if v == 2 {
					row += " " + e.Type
				}
				return kv.Set([]byte(e.Stream), []byte(row))
			},
		}
	}
	pr, _ := projection.New(store, target, version(1), projection.Options{})
	pr.Start(ctx)
	defer pr.Stop()
	// Waits on the projector's commits, for a settled output.
	if err := pr.WaitFor(ctx, 3); err != nil {
		panic(err)
	}
	v, _ := target.Get("orders", []byte("order-1"))
	fmt.Printf("version 1: %s\n", v)

	pr.RebuildWith(ctx, version(2))
	for {
		st, _ := pr.Status(ctx)
		if st.Generation == 1 && st.Rebuild == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	v, _ = target.Get("orders", []byte("order-1"))
	fmt.Printf("version 2: %s\n", v)
	fmt.Println("notified:", notified.Load())
	// Output:
	// version 1: 1
	// version 2: 1 ItemRemoved
	// notified: 1
}
