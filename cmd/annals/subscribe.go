package main

import (
	"context"
	"flag"
	"iter"

	"github.com/annals/annals"
)

func setupSubscribe(fs *flag.FlagSet) runFunc {
	stream := fs.String("stream", "", "subscribe to the stream of this `name` (default: the global log, $all)")
	from := fs.String("from", "start", "where to start; end delivers only new events; N is a revision with --stream, a position without")
	filters := defineFilters(fs)

	return func(ctx context.Context, e *env) error {
		start, err := parseFrom(*from, false)
		if err != nil {
			return err
		}
		if isSet(fs, "stream") && *stream == "" {
			return usagef("--stream needs a stream name (leave it out to subscribe to $all)")
		}
		var filter *annals.Filter
		if *stream != "" {
			if given := filters.given(); len(given) > 0 {
				return usagef("%s filters the global log and does not go with --stream", given[0])
			}
		} else if filter, err = filters.build(); err != nil {
			return err
		}

		return withStore(ctx, e, false, func(s annals.Store) error {
			var msgs iter.Seq2[annals.Message, error]
			if *stream != "" {
				msgs = s.SubscribeToStream(ctx, *stream, annals.SubscribeStreamOptions{From: start})
			} else {
				msgs = s.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: start, Filter: filter})
			}
			for m, err := range msgs {
				if err != nil {
					if ctx.Err() != nil {
						return nil // stopped by SIGINT or SIGTERM: a clean end
					}
					return err
				}
				switch m.Kind {
				case annals.MessageEvent:
					if filters.skip(&m.Event) {
						continue
					}
					err = e.out.event(&m.Event)
				case annals.MessageCaughtUp:
					err = e.out.caughtUp(m.Position)
				case annals.MessageCheckpoint:
					err = e.out.checkpoint(m.Position)
				}
				if err == nil {
					err = e.out.flush() // live: each message as it comes
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
}
