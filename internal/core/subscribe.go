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
	// Indexed, if not nil, reports a filter ReadAll answers from an index
	// rather than a scan: the subscription then passes it to ReadAll.
	Indexed func(*annals.Filter) bool
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
		sub := &allSub{src: src, opts: opts, batch: batch, yield: yield, interval: opts.CheckpointEveryEvents}
		if sub.interval == 0 {
			sub.interval = annals.DefaultCheckpointEveryEvents
		}
		sub.indexed = src.Indexed != nil && src.Indexed(opts.Filter)
		sub.next = max(opts.From, 1)
		if opts.From == annals.End {
			sub.next = wm.Load() + 1
		}
		caughtUp := false
		for {
			durable := wm.Load()
			if !sub.readTo(ctx, durable) {
				return
			}
			if !caughtUp {
				caughtUp = true
				if !sub.goLive() {
					return
				}
			}
			if _, err := wm.Wait(ctx, max(sub.next-1, durable)); err != nil {
				yield(annals.Message{}, err)
				return
			}
		}
	}
}

// allSub is the state of one $all subscription.
type allSub struct {
	src      Source
	opts     annals.SubscribeAllOptions
	batch    int
	interval uint64
	// indexed: the store reads the filter from an index, so the pages
	// hold only matching events; the events read between two are
	// counted from their positions (the log has no gaps).
	indexed bool
	yield   func(annals.Message, error) bool
	next    annals.Position
	// read counts the events read, matching or not, since the last
	// checkpoint: as KurrentDB, a filtered subscription checkpoints
	// every interval events of the log, however many it delivered.
	read      uint64
	delivered bool // the last event read was delivered
}

// readTo delivers the log up to durable, page by page; false when the
// subscription ends.
func (s *allSub) readTo(ctx context.Context, durable annals.Position) bool {
	for s.next <= durable {
		read := annals.ReadAllOptions{From: s.next, Limit: uint64(s.batch), ResolveLinks: s.opts.ResolveLinks}
		if s.indexed {
			read.Filter = s.opts.Filter
		}
		n := 0
		for e, err := range s.src.ReadAll(ctx, read) {
			if err != nil {
				s.yield(annals.Message{}, err)
				return false
			}
			n++
			if !s.event(&e) {
				return false
			}
		}
		if s.indexed && n < s.batch {
			// Every match up to durable is delivered: the rest of the
			// log up to it was read too.
			if s.next > durable {
				return true
			}
			s.read += uint64(durable + 1 - s.next)
			s.next = durable + 1
			s.delivered = false
			return s.checkpointDue(durable)
		}
		if n == 0 {
			break
		}
	}
	return true
}

// event handles one event a page yielded.
func (s *allSub) event(e *annals.Event) bool {
	at := e.Original().Position
	if s.indexed {
		// The events between the last one and this did not match.
		if skipped := uint64(at - s.next); skipped > 0 {
			s.read += skipped
			s.delivered = false
			if !s.checkpointDue(at - 1) {
				return false
			}
		}
	}
	s.next = annals.After(at)
	s.delivered = s.indexed || s.opts.Filter.Match(e.Original())
	if s.delivered && !s.yield(annals.Message{Kind: annals.MessageEvent, Event: *e}, nil) {
		return false
	}
	if s.opts.Filter == nil {
		return true
	}
	s.read++
	return s.checkpointDue(at)
}

// checkpointDue sends a checkpoint at p if interval events were read.
func (s *allSub) checkpointDue(p annals.Position) bool {
	if s.opts.Filter == nil || s.read < s.interval {
		return true
	}
	s.read = 0
	return s.yield(annals.Message{Kind: annals.MessageCheckpoint, Position: p}, nil)
}

// goLive sends, on catching up, a checkpoint at the last position read,
// so one comes within the interval (as KurrentDB sends it), unless the
// consumer has just had that position; then caught-up.
func (s *allSub) goLive() bool {
	if s.opts.Filter != nil && s.read > 0 && !s.delivered {
		s.read = 0
		if !s.yield(annals.Message{Kind: annals.MessageCheckpoint, Position: s.next - 1}, nil) {
			return false
		}
	}
	return s.yield(annals.Message{Kind: annals.MessageCaughtUp, Position: s.next - 1}, nil)
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
				for e, err := range src.ReadStream(ctx, stream, annals.ReadStreamOptions{From: next, Limit: uint64(batch), ResolveLinks: opts.ResolveLinks}) {
					if errors.Is(err, annals.ErrStreamNotFound) {
						break // soft-deleted since: its events are hidden
					}
					if err != nil {
						yield(annals.Message{}, err)
						return
					}
					at := e.Original().Revision
					if at > st.LastRevision {
						break
					}
					n++
					next = annals.After(at)
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
