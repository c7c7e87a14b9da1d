package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/jackc/pgx/v5"
)

// TestListStreamsUsesIndex: each branch of a listing is a range scan of
// streams_name_bytes, bounded by the prefix, whatever the database's
// collation; a scan of the whole table would grow with the store.
func TestListStreamsUsesIndex(t *testing.T) {
	s := openTest(t, testSchema(t), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for _, name := range []string{"order-1", "order-2", "customer-1"} {
		if _, err := s.Append(ctx, name, annals.Any, annals.EventData{Type: "Listed", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var plan []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A tiny table is cheaper to read whole: forbid that, so the plan
		// shows whether the index can serve the query at all.
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `EXPLAIN `+s.q.listStreams,
			likePrefix("order-"), "", annals.DefaultListStreamsLimit, beforeMetastreams, afterMetastreams)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if strings.Contains(text, "Seq Scan") || strings.Count(text, "streams_name_bytes") != 2 {
		t.Fatalf("the listing does not scan streams_name_bytes in both branches:\n%s", text)
	}
	if !strings.Contains(text, `'order-'::text`) {
		t.Fatalf("the prefix does not bound the index scans:\n%s", text)
	}
}
