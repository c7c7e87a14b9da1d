// Command seats is the mission's question made runnable: how do we ensure
// we don't book more seats than available, with many concurrent requests?
//
// A conference with --seats seats; --clients concurrent clients reserve 1
// to 4 seats at random and sometimes cancel. Each reservation is a command:
// the conference's stream is loaded from the store, the decision is made on
// it, and its event is appended at the revision it was made on; a client
// that lost the race loads again and decides again. At the end the stream
// is replayed to check that the seats reserved never exceeded the capacity
// at any revision (exit status 1 if they did).
//
//	go run ./examples/seats                      # an embedded store in a temporary directory
//	go run ./examples/seats --clients 1000 --reservations 5000
//	go run ./examples/seats --server 'kurrentdb://127.0.0.1:2113?tls=false' --conference c1
//
// Several processes with the same --conference against one server (or one
// PostgreSQL store) book the same seats. `annals demo seats` runs the same.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/seats"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("seats", flag.ContinueOnError)
	var cfg seats.Config
	seats.Flags(fs, &cfg)
	db := fs.String("db", "", "the `directory` of an embedded store (default: a temporary one, removed after)")
	server := fs.String("server", "", "run against a server at this `URL` (kurrentdb://host:port?tls=false)")
	pg := fs.String("postgres", "", "run against the PostgreSQL store at this `DSN`")
	schema := fs.String("postgres-schema", postgres.DefaultSchema, "the PostgreSQL `schema` of the store")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The flags default to the defaults, so a 0 here was typed.
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	store, where, cleanup, err := open(ctx, *db, *server, *pg, *schema)
	if err != nil {
		fmt.Fprintln(os.Stderr, "seats:", err)
		return 1
	}
	defer cleanup()
	fmt.Printf("store: %s\n", where)
	if _, err := seats.Run(ctx, store, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seats:", err)
		return 1
	}
	return 0
}

func open(ctx context.Context, db, server, pg, schema string) (annals.Store, string, func(), error) {
	switch {
	case server != "" && pg != "", server != "" && db != "", pg != "" && db != "":
		return nil, "", nil, fmt.Errorf("--db, --server and --postgres: one store at a time")
	case server != "":
		s, err := remote.Dial(server)
		return s, "server " + server, func() { s.Close() }, err
	case pg != "":
		s, err := postgres.Open(ctx, pg, postgres.Options{Schema: schema})
		if err != nil {
			return nil, "", nil, err
		}
		return s, "PostgreSQL schema " + schema, func() { s.Close() }, nil
	}
	dir, remove := db, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "annals-seats-")
		if err != nil {
			return nil, "", nil, err
		}
		dir, remove = tmp, func() { os.RemoveAll(tmp) }
	}
	// Warnings only: the report is the output.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := embedded.Open(dir, embedded.Options{Logger: logger})
	if err != nil {
		remove()
		return nil, "", nil, err
	}
	return s, "embedded in " + dir, func() { s.Close(); remove() }, nil
}
