package core

import (
	"context"
	"errors"
	"iter"

	"github.com/annals/annals"
)

// Source is what the subscription loops need of a store: its reads (which
// stop at the durable watermark) and the durable state of a stream. A
// struct of functions, not an interface, so a store hands over its
// unexported durable-state read without exporting it.
type Source struct {
	ReadStream   func(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error]
	ReadAll      func(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error]
	DurableState func(ctx context.Context, stream string) (StreamState, error)
}

// A subscription is a catch-up read that never ends: it reads storage in
// pages of batch events up to the durable watermark, then sleeps until the
// watermark moves and reads again. History and live events take the same
// path, so the switch from one to the other can neither skip, repeat nor
// reorder an event, and a slow consumer holds at most one page: memory stays
// bounded however far behind it falls.

// SubscribeAll runs an $all subscription.
func SubscribeAll(ctx context.Context, src Source, wm *Watermark, opts annals.SubscribeAllOptions, batch int) iter.Seq2[annals.Message, error] {
	return func(yield func(annals.Message, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Message{}, err)
			return
		}
		interval := opts.CheckpointEveryEvents
		if interval == 0 {
			interval = annals.DefaultCheckpointEveryEvents
		}
		next := max(opts.From, 1)
		if opts.From == annals.End {
			next = wm.Load() + 1
		}
		filter := opts.Filter
		// read counts the events read, matching or not, since the last
		// checkpoint: as KurrentDB, a filtered subscription checkpoints
		// every interval events of the log, however many it delivered.
		var read uint64
		delivered := false // the last event read was delivered
		caughtUp := false
		for {
			durable := wm.Load()
			for next <= durable {
				n := 0
				for e, err := range src.ReadAll(ctx, annals.ReadAllOptions{From: next, Limit: uint64(batch)}) {
					if err != nil {
						yield(annals.Message{}, err)
						return
					}
					n++
					next = annals.After(e.Position)
					delivered = filter.Match(&e)
					if delivered && !yield(annals.Message{Kind: annals.MessageEvent, Event: e}, nil) {
						return
					}
					if filter == nil {
						continue
					}
					if read++; read >= interval {
						read = 0
						if !yield(annals.Message{Kind: annals.MessageCheckpoint, Position: e.Position}, nil) {
							return
						}
					}
				}
				if n == 0 {
					break
				}
			}
			if !caughtUp {
				caughtUp = true
				// Going live, a checkpoint at the last position read, so
				// one comes within the interval (as KurrentDB sends it),
				// unless the consumer has just had that position.
				if filter != nil && read > 0 && !delivered {
					read = 0
					if !yield(annals.Message{Kind: annals.MessageCheckpoint, Position: next - 1}, nil) {
						return
					}
				}
				if !yield(annals.Message{Kind: annals.MessageCaughtUp, Position: next - 1}, nil) {
					return
				}
			}
			if _, err := wm.Wait(ctx, max(next-1, durable)); err != nil {
				yield(annals.Message{}, err)
				return
			}
		}
	}
}

// SubscribeStream runs a stream subscription. It waits for a stream that
// does not exist yet, keeps following a soft-deleted one (its revisions
// continue), and ends with ErrStreamDeleted on a tombstone.
func SubscribeStream(ctx context.Context, src Source, wm *Watermark, stream string, opts annals.SubscribeStreamOptions, batch int) iter.Seq2[annals.Message, error] {
	return func(yield func(annals.Message, error) bool) {
		next := opts.From
		if next == annals.End {
			st, err := src.DurableState(ctx, stream)
			if err != nil {
				yield(annals.Message{}, err)
				return
			}
			next = st.NextRevision()
		}
		caughtUp := false
		for {
			durable := wm.Load()
			st, err := src.DurableState(ctx, stream)
			if err != nil {
				yield(annals.Message{}, err)
				return
			}
			if st.Tombstoned {
				yield(annals.Message{}, annals.StreamDeleted(stream))
				return
			}
			for st.Exists && next <= st.LastRevision {
				n := 0
				for e, err := range src.ReadStream(ctx, stream, annals.ReadStreamOptions{From: next, Limit: uint64(batch)}) {
					if errors.Is(err, annals.ErrStreamNotFound) {
						break // soft-deleted since: its events are hidden
					}
					if err != nil {
						yield(annals.Message{}, err)
						return
					}
					if e.Revision > st.LastRevision {
						break
					}
					n++
					next = annals.After(e.Revision)
					if !yield(annals.Message{Kind: annals.MessageEvent, Event: e}, nil) {
						return
					}
				}
				if n == 0 {
					// The rest is hidden (deleted, truncated, expired).
					next = annals.After(st.LastRevision)
				}
			}
			if !caughtUp {
				caughtUp = true
				if !yield(annals.Message{Kind: annals.MessageCaughtUp, Position: durable}, nil) {
					return
				}
			}
			if _, err := wm.Wait(ctx, durable); err != nil {
				yield(annals.Message{}, err)
				return
			}
		}
	}
}
