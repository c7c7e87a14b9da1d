package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
			head, past, err := pastTheHead(ctx, s, *stream, start)
			if err != nil {
				return err
			}
			if past {
				warnPastTheHead(e, *stream, start, head)
			}
			var msgs iter.Seq2[annals.Message, error]
			if *stream != "" {
				msgs = s.SubscribeToStream(ctx, *stream, annals.SubscribeStreamOptions{From: annals.Revision(start)})
			} else {
				msgs = s.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: annals.Position(start), Filter: filter})
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
					// Past the head, the store reports the position before
					// --from, which does not exist: report the head.
					if past && *stream == "" {
						m.Position = min(m.Position, annals.Position(head))
					}
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

// pastTheHead reports whether a subscription from start (a position of
// $all, or a revision of stream) begins past the end: as on KurrentDB, it
// is live at once and delivers only what is written after start-1, so
// whatever comes before is passed over in silence. head is the last
// position of $all, or the stream's last revision (with no event: 0 and
// any start but Start is past).
func pastTheHead(ctx context.Context, s annals.Store, stream string, start uint64) (head uint64, past bool, err error) {
	if start == annals.Start || start == annals.End {
		return 0, false, nil
	}
	var last iter.Seq2[annals.Event, error]
	if stream == "" {
		last = s.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1})
	} else {
		last = s.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1})
	}
	for ev, err := range last {
		if errors.Is(err, annals.ErrStreamNotFound) || errors.Is(err, annals.ErrStreamDeleted) {
			return 0, true, nil // a subscription to it starts at its revision 0
		}
		if err != nil {
			return 0, false, err
		}
		if stream == "" {
			return uint64(ev.Position), start > uint64(annals.After(ev.Position)), nil
		}
		return uint64(ev.Revision), start > uint64(annals.After(ev.Revision)), nil
	}
	return 0, true, nil // an empty log: positions start at 1
}

func warnPastTheHead(e *env, stream string, start, head uint64) {
	what, last := "position", fmt.Sprintf("the log's last position is %d", head)
	if stream != "" {
		what, last = "revision", fmt.Sprintf("stream %q's last revision is %d", stream, head)
		if head == 0 {
			last = fmt.Sprintf("stream %q has no events", stream)
		}
	} else if head == 0 {
		last = "the log is empty"
	}
	fmt.Fprintf(e.stderr, "annals subscribe: --from %d is past the end (%s): the subscription is live at once and "+
		"delivers only events from %s %d on; those written before are not delivered\n", start, last, what, start)
}
