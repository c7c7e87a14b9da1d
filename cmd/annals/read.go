package main

import (
	"context"
	"flag"

	"github.com/annals/annals"
)

// readFlags are the flags read and read-all share.
type readFlags struct {
	from      *string
	backwards *bool
	limit     *uint64
}

func defineRead(fs *flag.FlagSet, what string) readFlags {
	return readFlags{
		from: fs.String("from", "", "the first "+what+" to read "+
			"(default start, or end with --backwards)"),
		backwards: fs.Bool("backwards", false, "read from newest to oldest"),
		limit:     fs.Uint64("limit", 0, "read at most `N` events (default: all)"),
	}
}

// parse returns the direction and the starting point.
func (r readFlags) parse() (annals.Direction, uint64, error) {
	dir := annals.Forwards
	if *r.backwards {
		dir = annals.Backwards
	}
	from, err := parseFrom(*r.from, *r.backwards)
	return dir, from, err
}

func setupRead(fs *flag.FlagSet) runFunc {
	stream := fs.String("stream", "", "the `name` of the stream to read (required)")
	rf := defineRead(fs, "revision")

	return func(ctx context.Context, e *env) error {
		if *stream == "" {
			return usagef("--stream is required")
		}
		dir, from, err := rf.parse()
		if err != nil {
			return err
		}
		opts := annals.ReadStreamOptions{Direction: dir, From: annals.Revision(from), Limit: *rf.limit}
		return withStore(ctx, e, false, func(s annals.Store) error {
			for ev, err := range s.ReadStream(ctx, *stream, opts) {
				if err != nil {
					return err
				}
				if err := e.out.event(&ev); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func setupReadAll(fs *flag.FlagSet) runFunc {
	rf := defineRead(fs, "position")
	filters := defineFilters(fs)

	return func(ctx context.Context, e *env) error {
		dir, from, err := rf.parse()
		if err != nil {
			return err
		}
		filter, err := filters.build()
		if err != nil {
			return err
		}
		opts := annals.ReadAllOptions{Direction: dir, From: annals.Position(from), Limit: *rf.limit, Filter: filter}
		if filters.alsoExcludeSystem {
			opts.Limit = 0 // the limit counts what is printed, after the skip
		}
		return withStore(ctx, e, false, func(s annals.Store) error {
			n := uint64(0)
			for ev, err := range s.ReadAll(ctx, opts) {
				if err != nil {
					return err
				}
				if filters.skip(&ev) {
					continue
				}
				if err := e.out.event(&ev); err != nil {
					return err
				}
				if n++; n == *rf.limit {
					break
				}
			}
			return nil
		})
	}
}
