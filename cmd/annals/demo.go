package main

import (
	"context"
	"flag"
	"os"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/seats"
	"github.com/annals/annals/demo/todo"
)

// demoCommand takes the demo's name off args and returns the command
// that runs it (its flags): seats or purge.
func demoCommand(demo *command, args []string) (*command, []string, error) {
	switch {
	case len(args) > 0 && args[0] == "seats":
		return demo, args[1:], nil
	case len(args) > 0 && args[0] == "purge":
		purge := *demo
		purge.synopsis = "purge [--users N] [--todos M] [--in-flight K]"
		purge.setup = setupDemoPurge
		return &purge, args[1:], nil
	case len(args) > 0 && strings.TrimLeft(args[0], "-") == "h", len(args) > 0 && strings.TrimLeft(args[0], "-") == "help":
		return demo, args, nil
	case len(args) == 0:
		return nil, nil, usagef("which demo? annals demo seats, or annals demo purge")
	}
	return nil, nil, usagef("unknown demo %q: the demos are seats and purge", args[0])
}

func setupDemo(fs *flag.FlagSet) runFunc {
	var cfg seats.Config
	seats.Flags(fs, &cfg)
	return func(ctx context.Context, e *env) error {
		// The flags default to the defaults, so a 0 here was typed.
		if err := cfg.Check(); err != nil {
			return usagef("%s", strings.TrimPrefix(err.Error(), "seats: "))
		}
		return withDemoStore(ctx, e, fs, func(s annals.Store) error {
			_, err := seats.Run(ctx, s, cfg, e.out.w)
			return err
		})
	}
}

func setupDemoPurge(fs *flag.FlagSet) runFunc {
	var cfg todo.PurgeConfig
	fs.IntVar(&cfg.Users, "users", todo.DefaultUsers, "the `number` of users, each with a list of its own")
	fs.IntVar(&cfg.Todos, "todos", todo.DefaultTodos, "the `number` of todos in each list, the even ones completed")
	fs.IntVar(&cfg.InFlight, "in-flight", todo.DefaultInFlight, "the most purge `commands` in flight at once")
	return func(ctx context.Context, e *env) error {
		if err := cfg.Check(); err != nil {
			return usagef("%s", strings.TrimPrefix(err.Error(), "todo: "))
		}
		return withDemoStore(ctx, e, fs, func(s annals.Store) error {
			_, err := todo.RunPurge(ctx, s, cfg, e.out.w)
			return err
		})
	}
}

// withDemoStore runs f on the store the flags name, or, without one, on a
// fresh embedded store in a temporary directory.
func withDemoStore(ctx context.Context, e *env, fs *flag.FlagSet, f func(annals.Store) error) error {
	if e.server == "" && e.postgres == "" && !isSet(fs, "db") {
		dir, err := os.MkdirTemp("", "annals-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		e.db = dir
	}
	return withStore(ctx, e, true, f)
}
