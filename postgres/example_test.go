package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/annals/annals"
	"github.com/annals/annals/postgres"
	"github.com/jackc/pgx/v5"
)

// Example opens a store in its own schema, appends, and reads the stream
// back; a second Store on the same schema (another node) sees the same
// events and is refused a stale write. It needs a PostgreSQL server:
// ANNALS_POSTGRES_DSN, or a local one.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("ANNALS_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	const schema = "annals_example"
	dropSchema(ctx, dsn, schema) // start afresh
	defer dropSchema(ctx, dsn, schema)

	opts := postgres.Options{Schema: schema, Logger: slog.New(slog.DiscardHandler)}
	store, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	res, err := store.Append(ctx, "account-9", annals.NoStream,
		annals.EventData{Type: "AccountOpened", Data: []byte(`{"owner":"ada"}`)},
		annals.EventData{Type: "MoneyDeposited", Data: []byte(`{"amount":100}`)})
	if err != nil {
		panic(err)
	}
	fmt.Printf("appended positions %d-%d; next expected revision %v\n", res.FirstPosition, res.LastPosition, res.NextExpected)

	// Another node opens the same schema.
	other, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		panic(err)
	}
	defer other.Close()
	for e, err := range other.ReadStream(ctx, "account-9", annals.ReadStreamOptions{}) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("revision %d (position %d): %s %s\n", e.Revision, e.Position, e.Type, e.Data)
	}
	if _, err := store.Append(ctx, "account-9", annals.Exact(1),
		annals.EventData{Type: "MoneyWithdrawn", Data: []byte(`{"amount":30}`)}); err != nil {
		panic(err)
	}
	// The other node decided on revision 1 too; the database refuses it.
	_, err = other.Append(ctx, "account-9", annals.Exact(1),
		annals.EventData{Type: "MoneyWithdrawn", Data: []byte(`{"amount":90}`)})
	fmt.Println(err)
	// Output:
	// appended positions 1-2; next expected revision 1
	// revision 0 (position 1): AccountOpened {"owner":"ada"}
	// revision 1 (position 2): MoneyDeposited {"amount":100}
	// annals: wrong expected revision on stream "account-9": expected 1, actual 2
}

func dropSchema(ctx context.Context, dsn, schema string) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		panic(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		panic(err)
	}
}
