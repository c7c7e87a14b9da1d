package core

import (
	"context"
	"iter"

	"github.com/annals/annals"
)

// ScanQuery reads the events q matches by scanning the log with readAll:
// the memory store's way, and what the indexed stores do for a query
// whose items name no tag.
func ScanQuery(ctx context.Context, readAll func(context.Context, annals.ReadAllOptions) iter.Seq2[annals.Event, error], q annals.Query, opts annals.ReadQueryOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err := q.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		var n uint64
		for e, err := range readAll(ctx, annals.ReadAllOptions{Direction: opts.Direction, From: opts.From}) {
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			if !q.Matches(e.Type, e.Tags) {
				continue
			}
			if !yield(e, nil) {
				return
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return
			}
		}
	}
}

// Indexed reports whether every item of q names a tag, so that a store's
// tag index answers it; a query without items (every event) or with an
// item of types only is read from the log.
func Indexed(q annals.Query) bool {
	if len(q.Items) == 0 {
		return false
	}
	for _, it := range q.Items {
		if len(it.Tags) == 0 {
			return false
		}
	}
	return true
}
