package command

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/backoff"
)

// MaxQueryEvents bounds the events one decision of HandleQuery reads: a
// query's boundary is meant to be small (one course's subscriptions, one
// username's claims), and all of it is held while deciding.
const MaxQueryEvents = 10_000

// ErrQueryTooLarge: a query matched more than MaxQueryEvents events.
var ErrQueryTooLarge = fmt.Errorf("command: the query matches more than %d events; narrow its boundary", MaxQueryEvents)

// QueryDecide decides on the events a query matched (in global order):
// it returns the records to append, none if there is nothing to do. Like
// Decide, it must be pure: it may run again after a conflict.
type QueryDecide func(events []annals.Event) ([]annals.Record, error)

// QueryResult is the outcome of HandleQuery.
type QueryResult struct {
	// Appended is the append's result; zero if the decision appended
	// nothing.
	Appended annals.MultiAppendResult
	// Attempts is how many times the command was decided.
	Attempts int
}

// QueryOptions configure HandleQuery.
type QueryOptions struct {
	// Retry limits the decisions after conflicts; the zero value takes
	// the defaults.
	Retry Retry
	// Last, if not 0, reads only the last Last events the query matches
	// (still given to decide in global order): a decision that needs only
	// the latest (the last invoice's number) stays one read however long
	// the history. The condition is then "nothing matching since the last
	// of them", which is the same guarantee.
	Last int
}

// HandleQuery decides a command with a dynamic consistency boundary:
// it reads the events q matches, lets decide choose the records, and
// appends them under the condition that no event matching q was appended
// after the last one it read. If one was, it reads and decides again,
// with opts.Retry's policy; then *ConflictError. decide's errors come
// back as they are.
func HandleQuery(ctx context.Context, s annals.Store, q annals.Query, decide QueryDecide, opts QueryOptions) (QueryResult, error) {
	retry := opts.Retry.withDefaults()
	for attempt := 1; ; attempt++ {
		res, err := attemptQuery(ctx, s, q, decide, opts.Last)
		res.Attempts = attempt
		if err == nil || !errors.Is(err, annals.ErrConditionFailed) {
			return res, err
		}
		if attempt >= retry.MaxAttempts {
			return res, &ConflictError{Stream: fmt.Sprintf("query %v", q.Items), Attempts: attempt, Err: err}
		}
		if err := backoff.Sleep(ctx, retry.backoff(attempt)); err != nil {
			return res, err
		}
	}
}

func attemptQuery(ctx context.Context, s annals.Store, q annals.Query, decide QueryDecide, last int) (QueryResult, error) {
	read := annals.ReadQueryOptions{}
	if last > 0 {
		read = annals.ReadQueryOptions{Direction: annals.Backwards, From: annals.End, Limit: uint64(min(last, MaxQueryEvents))}
	}
	var events []annals.Event
	var after annals.Position
	for e, err := range s.ReadQuery(ctx, q, read) {
		if err != nil {
			return QueryResult{}, err
		}
		if len(events) == MaxQueryEvents {
			return QueryResult{}, ErrQueryTooLarge
		}
		events = append(events, e)
		after = max(after, e.Position)
	}
	if last > 0 {
		slices.Reverse(events)
	}
	records, err := decide(events)
	if err != nil || len(records) == 0 {
		return QueryResult{}, err
	}
	r, err := s.AppendMulti(ctx, annals.MultiAppend{Records: records, Condition: &annals.Condition{Query: q, After: after}})
	return QueryResult{Appended: r}, err
}
