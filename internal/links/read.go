package links

import (
	"context"
	"iter"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
)

// Entry is one entry of an index stream: its revision there and the event
// of the log it points at.
type Entry struct {
	Revision annals.Revision
	Event    annals.Event
}

// Source is what the reads here need of a store. A struct of functions,
// as core.Source, so a store hands over unexported reads.
type Source struct {
	// ReadStream and ReadAll are the store's own reads of ordinary
	// streams and of $all, without links resolved.
	ReadStream func(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error]
	ReadAll    func(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error]
	// State returns the durable state of a stream, an index stream
	// included (Exists once it has an entry; LastRevision its last).
	State func(ctx context.Context, stream string) (core.StreamState, error)
	// Metadata returns a stream's metadata.
	Metadata func(ctx context.Context, stream string) (annals.StreamMetadata, error)
	// Entries yields the durable entries lo..hi of index stream name in
	// dir. It may stop early when the consumer does.
	Entries func(ctx context.Context, name string, lo, hi annals.Revision, dir annals.Direction) iter.Seq2[Entry, error]
	// Positions, if not nil, yields the entries of name from the first
	// whose event is at or after position from (Forwards), or at or
	// before it (Backwards), up to durable: the category filter of $all
	// reads uses it instead of a scan.
	Positions func(ctx context.Context, name string, from annals.Position, dir annals.Direction) iter.Seq2[Entry, error]
	Now       func() time.Time
}

// ReadStream reads a stream: an index stream from its entries, any other
// from the store, resolving links if opts asks.
func ReadStream(ctx context.Context, src Source, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	if annals.IsIndexStream(stream) {
		return readIndex(ctx, src, stream, opts)
	}
	seq := src.ReadStream(ctx, stream, opts)
	if !opts.ResolveLinks {
		return seq
	}
	return resolveAll(ctx, src, seq)
}

// ReadAll reads $all: a category filter from the category's index, the
// rest from the store, resolving links if opts asks.
func ReadAll(ctx context.Context, src Source, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	seq := src.ReadAll
	if name, ok := indexOf(opts.Filter); ok && src.Positions != nil {
		seq = func(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
			return readAllIndexed(ctx, src, name, opts)
		}
	}
	if !opts.ResolveLinks {
		return seq(ctx, opts)
	}
	return resolveAll(ctx, src, seq(ctx, opts))
}

// indexOf returns the index stream that holds exactly the events f
// matches, if there is one: a category whose streams the category index
// holds (a '$' category is not indexed).
func indexOf(f *annals.Filter) (string, bool) {
	c, ok := f.Category()
	if !ok || strings.HasPrefix(c, "$") {
		return "", false
	}
	return annals.CategoryStream(c), true
}

func readAllIndexed(ctx context.Context, src Source, name string, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		var n uint64
		for en, err := range src.Positions(ctx, name, opts.From, opts.Direction) {
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			// The category index also holds deletions of the category's
			// streams (as $ce- does); $all's category filter looks at
			// the stream the record is in.
			if !opts.Filter.Match(&en.Event) {
				continue
			}
			if !yield(en.Event, nil) {
				return
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return
			}
		}
	}
}

// readIndex reads an index stream as KurrentDB would read the stream of
// link events its system projection wrote: planned against the index
// stream's own state and metadata, each entry answered as its link, or,
// resolving, as the event it points at with the link beside it.
func readIndex(ctx context.Context, src Source, name string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		st, err := src.State(ctx, name)
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		md, err := src.Metadata(ctx, name)
		if err != nil {
			yield(annals.Event{}, err)
			return
		}
		r, err := core.PlanStreamRead(name, st, md, opts, src.Now())
		if err != nil || r.Empty {
			if err != nil {
				yield(annals.Event{}, err)
			}
			return
		}
		res := newResolver(src)
		var yielded uint64
		for en, err := range src.Entries(ctx, name, r.Lo, r.Hi, r.Direction) {
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			l := Link(name, en.Revision, &en.Event)
			keep, more := r.Take(&l, yielded)
			if keep {
				e := l
				if opts.ResolveLinks && l.Type == annals.EventTypeLink {
					if e, err = res.entry(ctx, &l, &en.Event); err != nil {
						yield(annals.Event{}, err)
						return
					}
				}
				yielded++
				if !yield(e, nil) {
					return
				}
			}
			if !more {
				return
			}
		}
	}
}

func resolveAll(ctx context.Context, src Source, seq iter.Seq2[annals.Event, error]) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		res := newResolver(src)
		for e, err := range seq {
			if err == nil && e.Type == annals.EventTypeLink {
				e, err = res.link(ctx, &e)
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// Indexed reports whether ReadAll answers f from an index (see Source's
// Positions), for core.Source.
func Indexed(f *annals.Filter) bool {
	_, ok := indexOf(f)
	return ok
}
