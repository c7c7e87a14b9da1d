package annals_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
)

// A writer loads a stream, decides on what it read, and appends at the
// revision it read: a compare-and-swap on the stream's tail. Of two writers
// that decided on the same revision, only the first one's append is
// accepted; the other gets a *WrongExpectedRevisionError and must load
// again and decide again.
func ExampleExpectedRevision() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	const screening = "screening-7"
	type seatBooked struct {
		Seat string `json:"seat"`
	}

	// load folds the stream into the booked seats, and returns the revision
	// that state reflects.
	load := func() (map[string]bool, annals.ExpectedRevision) {
		booked := map[string]bool{}
		rev := annals.NoStream
		for e, err := range store.ReadStream(ctx, screening, annals.ReadStreamOptions{}) {
			if errors.Is(err, annals.ErrStreamNotFound) {
				break // nothing booked yet
			}
			if err != nil {
				panic(err)
			}
			var b seatBooked
			if err := json.Unmarshal(e.Data, &b); err != nil {
				panic(err)
			}
			booked[b.Seat] = true
			rev = annals.Exact(e.Revision)
		}
		return booked, rev
	}

	// book decides on the loaded state and appends at its revision.
	book := func(seat string, booked map[string]bool, rev annals.ExpectedRevision) (annals.AppendResult, error) {
		if booked[seat] {
			return annals.AppendResult{}, fmt.Errorf("seat %s is taken", seat)
		}
		data, _ := json.Marshal(seatBooked{Seat: seat})
		return store.Append(ctx, screening, rev, annals.EventData{Type: "SeatBooked", Data: data})
	}

	// Someone already booked A1.
	seats, rev := load()
	if _, err := book("A1", seats, rev); err != nil {
		panic(err)
	}

	// Alice and Bob load the screening at the same time: B2 is free for both.
	aliceSeats, aliceRev := load()
	bobSeats, bobRev := load()

	res, err := book("B2", aliceSeats, aliceRev)
	if err != nil {
		panic(err)
	}
	fmt.Println("alice booked B2; next expected revision:", res.NextExpected)

	// Bob decided on a revision that is no longer the tail.
	_, err = book("B2", bobSeats, bobRev)
	var conflict *annals.WrongExpectedRevisionError
	if errors.As(err, &conflict) {
		fmt.Printf("bob lost the race on %s: expected %v, actual %v\n", conflict.Stream, conflict.Expected, conflict.Actual)
	}

	// Bob loads again and decides again.
	bobSeats, bobRev = load()
	_, err = book("B2", bobSeats, bobRev)
	fmt.Println("bob retried:", err)
	// Output:
	// alice booked B2; next expected revision: 1
	// bob lost the race on screening-7: expected 0, actual 1
	// bob retried: seat B2 is taken
}

// A subscription to $all delivers the history, says when it has caught up,
// then delivers live events as they are appended. It ends when its context
// is cancelled.
func ExampleStore_SubscribeToAll() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	for _, stream := range []string{"order-1", "order-2"} {
		if _, err := store.Append(ctx, stream, annals.NoStream, annals.EventData{Type: "OrderPlaced"}); err != nil {
			panic(err)
		}
	}

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	appended := make(chan error, 1)
	live := false
	for msg, err := range store.SubscribeToAll(subCtx, annals.SubscribeAllOptions{From: annals.Start}) {
		if err != nil {
			fmt.Println("subscription ended:", err)
			break
		}
		switch msg.Kind {
		case annals.MessageEvent:
			when := "history"
			if live {
				when = "live"
			}
			e := msg.Event
			fmt.Printf("%s: position %d %s %s\n", when, e.Position, e.Stream, e.Type)
			if live {
				cancel() // got what we came for
			}
		case annals.MessageCaughtUp:
			fmt.Println("caught up at position", msg.Position)
			live = true
			// Another writer appends while we are subscribed.
			go func() {
				_, err := store.Append(ctx, "order-1", annals.Exact(0), annals.EventData{Type: "OrderShipped"})
				appended <- err
			}()
		}
	}
	if err := <-appended; err != nil {
		panic(err)
	}
	// Output:
	// history: position 1 order-1 OrderPlaced
	// history: position 2 order-2 OrderPlaced
	// caught up at position 2
	// live: position 3 order-1 OrderShipped
	// subscription ended: context canceled
}

// A category is a stream name up to its first '-'. CategoryFilter reads
// every stream of one category from the global log, in global order.
func ExampleCategoryFilter() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	appends := []struct{ stream, typ string }{
		{"order-1", "OrderPlaced"},
		{"customer-7", "CustomerRegistered"},
		{"order-2", "OrderPlaced"},
		{"orders-report", "ReportGenerated"}, // category "orders", not "order"
		{"order-1", "OrderShipped"},
	}
	for _, a := range appends {
		if _, err := store.Append(ctx, a.stream, annals.Any, annals.EventData{Type: a.typ}); err != nil {
			panic(err)
		}
	}

	for e, err := range store.ReadAll(ctx, annals.ReadAllOptions{Filter: annals.CategoryFilter("order")}) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("position %d: %s@%d %s\n", e.Position, e.Stream, e.Revision, e.Type)
	}
	// Output:
	// position 1: order-1@0 OrderPlaced
	// position 3: order-2@0 OrderPlaced
	// position 5: order-1@1 OrderShipped
}

// Stream metadata limits what reads of the stream show: with MaxCount 2, only
// the last two events. The global log still holds every event.
func ExampleStreamMetadata() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	for _, t := range []string{"18.5", "19.0", "19.5", "20.0"} {
		data := []byte(`{"celsius":` + t + `}`)
		if _, err := store.Append(ctx, "sensor-1", annals.Any, annals.EventData{Type: "TemperatureRead", Data: data}); err != nil {
			panic(err)
		}
	}

	// The metastream $$sensor-1 has no event yet: expect NoStream.
	if _, err := store.SetStreamMetadata(ctx, "sensor-1", annals.NoStream, annals.StreamMetadata{MaxCount: 2}); err != nil {
		panic(err)
	}
	md, rev, err := store.StreamMetadata(ctx, "sensor-1")
	if err != nil {
		panic(err)
	}
	fmt.Printf("max count %d, metastream revision %v\n", md.MaxCount, rev)

	for e, err := range store.ReadStream(ctx, "sensor-1", annals.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("revision %d: %s\n", e.Revision, e.Data)
	}

	n := 0
	for _, err := range store.ReadAll(ctx, annals.ReadAllOptions{Filter: annals.StreamPrefixFilter("sensor-1")}) {
		if err != nil {
			panic(err)
		}
		n++
	}
	fmt.Println("events of sensor-1 in $all:", n)
	// Output:
	// max count 2, metastream revision 0
	// revision 2: {"celsius":19.5}
	// revision 3: {"celsius":20.0}
	// events of sensor-1 in $all: 4
}

// A consumer saves the position of the last event it handled and, on a
// restart, goes on after it. From is inclusive, so the resume point is
// After(checkpoint): passing the checkpoint itself would handle that event
// twice.
func ExampleAfter() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	for _, typ := range []string{"Opened", "Deposited", "Withdrawn"} {
		if _, err := store.Append(ctx, "account-1", annals.Any, annals.EventData{Type: typ}); err != nil {
			panic(err)
		}
	}

	var checkpoint annals.Position // saved with the consumer's own data
	for e, err := range store.ReadAll(ctx, annals.ReadAllOptions{Limit: 2}) {
		if err != nil {
			panic(err)
		}
		fmt.Println("handled", e.Type)
		checkpoint = e.Position
	}

	for e, err := range store.ReadAll(ctx, annals.ReadAllOptions{From: annals.After(checkpoint)}) {
		if err != nil {
			panic(err)
		}
		fmt.Println("resumed with", e.Type)
	}
	fmt.Println(annals.After(annals.Position(annals.End)) == annals.End)
	// Output:
	// handled Opened
	// handled Deposited
	// resumed with Withdrawn
	// true
}

// A console lists the streams of a category a page at a time: the cursor
// of the next page is the last name of this one, and a page shorter than
// the limit is the last. Stores that can list implement StreamLister.
func ExampleStreamLister() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	for _, name := range []string{"order-3", "customer-1", "order-1", "order-2", "order-4", "order-5"} {
		if _, err := store.Append(ctx, name, annals.Any, annals.EventData{Type: "Placed"}); err != nil {
			panic(err)
		}
	}
	if _, err := store.Delete(ctx, "order-2", annals.Any); err != nil {
		panic(err)
	}

	var lister annals.StreamLister = store
	opts := annals.ListStreamsOptions{Prefix: "order-", Limit: 2}
	for {
		page, err := lister.ListStreams(ctx, opts)
		if err != nil {
			panic(err)
		}
		for _, s := range page {
			fmt.Printf("%s at revision %d, deleted: %v\n", s.Name, s.LastRevision, s.Deleted)
		}
		if len(page) < opts.PageSize() {
			break
		}
		opts.After = page[len(page)-1].Name
		fmt.Println("-- next page after", opts.After)
	}
	// Output:
	// order-1 at revision 0, deleted: false
	// order-2 at revision 0, deleted: true
	// -- next page after order-2
	// order-3 at revision 0, deleted: false
	// order-4 at revision 0, deleted: false
	// -- next page after order-4
	// order-5 at revision 0, deleted: false
}

// A transfer between two warehouses is one decision over two streams:
// both events or neither, each stream at the revision the decision read.
// A second transfer decided on the same revisions fails whole, and its
// error names every stream that moved on.
func ExampleStore_AppendMulti() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	store.Append(ctx, "warehouse-a", annals.NoStream, annals.EventData{Type: "Stocked", Data: []byte(`{"units":10}`)})
	store.Append(ctx, "warehouse-b", annals.NoStream, annals.EventData{Type: "Stocked", Data: []byte(`{"units":0}`)})

	transfer := annals.Streams(
		annals.StreamAppend{Stream: "warehouse-a", Expected: annals.Exact(0),
			Events: []annals.EventData{{Type: "Shipped", Data: []byte(`{"units":4}`)}}},
		annals.StreamAppend{Stream: "warehouse-b", Expected: annals.Exact(0),
			Events: []annals.EventData{{Type: "Received", Data: []byte(`{"units":4}`)}}},
	)
	res, err := store.AppendMulti(ctx, transfer)
	if err != nil {
		panic(err)
	}
	for _, s := range res.Streams {
		fmt.Println(s.Stream, "now at", s.NextExpected, "position", s.LastPosition)
	}

	// Decided on the same revisions: refused, nothing written.
	_, err = store.AppendMulti(ctx, annals.Streams(
		annals.StreamAppend{Stream: "warehouse-a", Expected: annals.Exact(0),
			Events: []annals.EventData{{Type: "Shipped", Data: []byte(`{"units":4}`)}}},
		annals.StreamAppend{Stream: "warehouse-b", Expected: annals.Exact(0),
			Events: []annals.EventData{{Type: "Received", Data: []byte(`{"units":4}`)}}},
	))
	var ce *annals.ConsistencyError
	if errors.As(err, &ce) {
		for _, v := range ce.Violations {
			fmt.Println("stale:", v.Stream, "expected", v.Expected, "actual", v.Actual)
		}
	}
	// Output:
	// warehouse-a now at 1 position 3
	// warehouse-b now at 1 position 4
	// stale: warehouse-a expected 0 actual 1
	// stale: warehouse-b expected 0 actual 1
}
