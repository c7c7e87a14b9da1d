// Command todo is the mission's PurgeAllCompletedTodos across users whose
// lists are separate aggregates, made runnable: --users lists of --todos
// todos, the even ones completed; one PurgeRequested names every user; a
// process manager sends the purge command to each list, at most
// --in-flight at a time, each with an idempotency key derived from the
// purge and the step; then every list is replayed to check it was purged
// once, of exactly its completed todos (exit status 1 if not).
//
//	go run ./examples/todo                        # an embedded store in a temporary directory
//	go run ./examples/todo --users 5000 --in-flight 32
//	go run ./examples/todo --server 'kurrentdb://127.0.0.1:2113?tls=false'
//
// The domain is package demo/todo; `annals demo purge` runs the same.
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
	"github.com/annals/annals/demo/todo"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("todo", flag.ContinueOnError)
	var cfg todo.PurgeConfig
	fs.IntVar(&cfg.Users, "users", todo.DefaultUsers, "the `number` of users, each with a list of its own")
	fs.IntVar(&cfg.Todos, "todos", todo.DefaultTodos, "the `number` of todos in each list")
	fs.IntVar(&cfg.InFlight, "in-flight", todo.DefaultInFlight, "the most purge `commands` in flight at once")
	server := fs.String("server", "", "run against a server at this `URL` (default: a temporary embedded store)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	store, cleanup, err := open(*server)
	if err != nil {
		fmt.Fprintln(os.Stderr, "todo:", err)
		return 1
	}
	defer cleanup()
	if _, err := todo.RunPurge(ctx, store, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "todo:", err)
		return 1
	}
	return 0
}

func open(server string) (annals.Store, func(), error) {
	if server != "" {
		s, err := remote.Dial(server)
		return s, func() { s.Close() }, err
	}
	dir, err := os.MkdirTemp("", "annals-todo-")
	if err != nil {
		return nil, nil, err
	}
	s, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }, nil
}
