package main

import (
	"context"
	"flag"
	"os"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/seats"
)

// demoArgs takes the demo's name off args: seats is the only one.
func demoArgs(args []string) ([]string, error) {
	switch {
	case len(args) > 0 && args[0] == "seats":
		return args[1:], nil
	case len(args) > 0 && strings.TrimLeft(args[0], "-") == "h", len(args) > 0 && strings.TrimLeft(args[0], "-") == "help":
		return args, nil
	case len(args) == 0:
		return nil, usagef("which demo? annals demo seats")
	}
	return nil, usagef("unknown demo %q: the demo is seats", args[0])
}

func setupDemo(fs *flag.FlagSet) runFunc {
	var cfg seats.Config
	seats.Flags(fs, &cfg)
	return func(ctx context.Context, e *env) error {
		// The flags default to the defaults, so a 0 here was typed.
		if err := cfg.Check(); err != nil {
			return usagef("%s", strings.TrimPrefix(err.Error(), "seats: "))
		}
		if e.server == "" && e.postgres == "" && !isSet(fs, "db") {
			dir, err := os.MkdirTemp("", "annals-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			e.db = dir
		}
		return withStore(ctx, e, true, func(s annals.Store) error {
			_, err := seats.Run(ctx, s, cfg, e.out.w)
			return err
		})
	}
}
