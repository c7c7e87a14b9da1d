package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
)

// Example opens a store in a directory, appends, closes it, and opens it
// again: an acknowledged append is durable.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "annals-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	opts := embedded.Options{Logger: slog.New(slog.DiscardHandler)}

	store, err := embedded.Open(dir, opts)
	if err != nil {
		panic(err)
	}
	res, err := store.Append(ctx, "account-9", annals.NoStream,
		annals.EventData{Type: "AccountOpened", Data: []byte(`{"owner":"ada"}`)},
		annals.EventData{Type: "MoneyDeposited", Data: []byte(`{"amount":100}`)})
	if err != nil {
		panic(err)
	}
	fmt.Printf("appended positions %d-%d; next expected revision %v\n", res.FirstPosition, res.LastPosition, res.NextExpected)
	if err := store.Close(); err != nil {
		panic(err)
	}

	// Open the same directory again: everything acknowledged is there.
	store, err = embedded.Open(dir, opts)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	fmt.Println("reopened at position", store.Position())
	for e, err := range store.ReadStream(ctx, "account-9", annals.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("revision %d (position %d): %s %s\n", e.Revision, e.Position, e.Type, e.Data)
	}

	// The stream carries on where it was.
	res, err = store.Append(ctx, "account-9", annals.Exact(1),
		annals.EventData{Type: "MoneyWithdrawn", Data: []byte(`{"amount":30}`)})
	if err != nil {
		panic(err)
	}
	fmt.Printf("appended position %d; next expected revision %v\n", res.LastPosition, res.NextExpected)
	// Output:
	// appended positions 1-2; next expected revision 1
	// reopened at position 2
	// revision 0 (position 1): AccountOpened {"owner":"ada"}
	// revision 1 (position 2): MoneyDeposited {"amount":100}
	// appended position 3; next expected revision 2
}
