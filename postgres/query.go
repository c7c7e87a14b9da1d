package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/jackc/pgx/v5"
)

// Queries of dynamic consistency boundaries over the tag index
// (event_tags, migration 4): an item's candidates are the index rows of
// its first tag, filtered by type in the index; the event's other tags
// are checked on its row (tags @> the item's tags). A query with an item
// that names no tag reads the log (ReadAll for reads; a scan by type for
// conditions), as the memory store does.

// itemFirstSQL selects the first event after a position that one item
// matches, driven by the index of the item's first tag.
func itemFirstSQL(schema string, it annals.QueryItem, after int64) (string, []any) {
	allTags, _ := json.Marshal(it.Tags)
	return fmt.Sprintf(`SELECT t.position FROM %[1]s.event_tags t JOIN %[1]s.events e ON e.position = t.position
		WHERE t.tag = $1 AND t.position > $2 AND (coalesce(cardinality($3::text[]), 0) = 0 OR t.type = ANY($3::text[]))
		AND e.tags @> $4::text::jsonb ORDER BY t.position LIMIT 1`, schema), []any{it.Tags[0], after, it.Types, string(allTags)}
}

// querySQL selects the events q matches from a position, in direction:
// one index scan per item, merged by position.
func querySQL(schema string, q annals.Query, backwards bool, from int64, limit int) (string, []any) {
	args := []any{from, limit}
	var parts []string
	cmp, order := ">=", "ASC"
	if backwards {
		cmp, order = "<=", "DESC"
	}
	for _, it := range q.Items {
		n := len(args)
		allTags, _ := json.Marshal(it.Tags)
		args = append(args, it.Tags[0], it.Types, string(allTags))
		parts = append(parts, fmt.Sprintf(`(SELECT t.position FROM %[1]s.event_tags t JOIN %[1]s.events e ON e.position = t.position
			WHERE t.tag = $%[2]d AND t.position %[5]s $1 AND (coalesce(cardinality($%[3]d::text[]), 0) = 0 OR t.type = ANY($%[3]d::text[]))
			AND e.tags @> $%[4]d::text::jsonb ORDER BY t.position %[6]s LIMIT $2)`, schema, n+1, n+2, n+3, cmp, order))
	}
	sql := fmt.Sprintf(`SELECT %s FROM %s.events WHERE position IN (%s) ORDER BY position %s LIMIT $2`,
		eventColumns, schema, strings.Join(parts, " UNION "), order)
	return sql, args
}

// ReadQuery implements annals.Store: from the tag index when every item
// of q names a tag, else by reading the log.
func (s *Store) ReadQuery(ctx context.Context, q annals.Query, opts annals.ReadQueryOptions) iter.Seq2[annals.Event, error] {
	if !core.Indexed(q) {
		return core.ScanQuery(ctx, s.ReadAll, q, opts)
	}
	return func(yield func(annals.Event, error) bool) {
		if err := q.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		lo, hi, ok := core.AllRead(annals.ReadAllOptions{Direction: opts.Direction, From: opts.From}, math.MaxInt64)
		if !ok {
			return
		}
		backwards := opts.Direction == annals.Backwards
		from := clamp(lo)
		if backwards {
			from = clamp(hi)
		}
		var n uint64
		for {
			var page []annals.Event
			err := s.use(ctx, func() (err error) {
				sql, args := querySQL(ident(s.opts.Schema), q, backwards, from, annals.DefaultReadBatchEvents)
				rows, err := s.pool.Query(ctx, sql, args...)
				if err != nil {
					return err
				}
				page, _, err = scanEvents(rows, math.MaxInt)
				return err
			})
			if err != nil {
				yield(annals.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				if n++; opts.Limit > 0 && n >= opts.Limit {
					return
				}
			}
			if len(page) < annals.DefaultReadBatchEvents {
				return
			}
			last := int64(page[len(page)-1].Position)
			if from = last + 1; backwards {
				from = last - 1
			}
		}
	}
}

// FirstMatch implements core.View: the first event after after that q
// matches, in the database as the group's transaction sees it (the head
// locked: every commit before it) and then among the group's planned
// events.
func (v *groupView) FirstMatch(q annals.Query, after annals.Position) (annals.Position, error) {
	first, err := v.firstCommitted(q, after)
	if err != nil {
		return 0, v.fail(err)
	}
	if first != 0 {
		return first, nil
	}
	if !core.Indexed(q) && v.head > after && v.head-after > annals.MaxConditionScanEvents {
		// Items without tags looked at the first MaxConditionScanEvents
		// only: refuse this append (not the group's failure).
		return 0, annals.ErrConditionScan
	}
	for _, e := range v.events {
		if e.Position > after && q.Matches(e.Type, e.Tags) {
			return e.Position, nil
		}
	}
	return 0, nil
}

// firstKey names one item's first match after a position.
func firstKey(it annals.QueryItem, after annals.Position) string {
	k, _ := json.Marshal([]any{it.Types, it.Tags, after})
	return string(k)
}

// itemQuery is the statement of an item's first match after after; an
// item without tags scans by type (all of them for the empty item, the
// query without items).
func (v *groupView) itemQuery(it annals.QueryItem, after annals.Position) (string, []any) {
	if len(it.Tags) == 0 {
		return v.q.firstAfter, []any{clamp(after), it.Types, int64(annals.MaxConditionScanEvents)}
	}
	return itemFirstSQL(ident(v.q.schema), it, clamp(after))
}

// items are q's items, or the one empty item for a query without any.
func items(q annals.Query) []annals.QueryItem {
	if len(q.Items) == 0 {
		return []annals.QueryItem{{}}
	}
	return q.Items
}

// queueConditions queues the first-match reads of the group's
// conditions and returns their keys in order.
func (v *groupView) queueConditions(b *pgx.Batch, reqs []*core.Request) []string {
	var keys []string
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.Op.Multi == nil || r.Op.Multi.Condition == nil || r.Op.Multi.Condition.Query.Validate() != nil {
			continue
		}
		c := r.Op.Multi.Condition
		for _, it := range items(c.Query) {
			if k := firstKey(it, c.After); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
				sql, args := v.itemQuery(it, c.After)
				b.Queue(sql, args...)
			}
		}
	}
	return keys
}

// readConditions reads the answers queueConditions asked for.
func (v *groupView) readConditions(br pgx.BatchResults, keys []string) error {
	v.first = make(map[string]annals.Position, len(keys))
	for _, k := range keys {
		var p int64
		if err := br.QueryRow().Scan(&p); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		v.first[k] = annals.Position(p)
	}
	return nil
}

func (v *groupView) firstCommitted(q annals.Query, after annals.Position) (annals.Position, error) {
	var first int64
	for _, it := range items(q) {
		var pos annals.Position
		var err error
		if p, ok := v.first[firstKey(it, after)]; ok {
			pos = p
		} else {
			sql, args := v.itemQuery(it, after)
			var p int64
			err = v.conn.QueryRow(v.ctx, sql, args...).Scan(&p)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
			pos = annals.Position(p)
		}
		if err != nil {
			return 0, err
		}
		if pos != 0 && (first == 0 || int64(pos) < first) {
			first = int64(pos)
		}
	}
	return annals.Position(first), nil
}
