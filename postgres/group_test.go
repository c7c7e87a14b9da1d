package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
)

// TestGroupCommitOneTransaction holds one group before its COMMIT, sees the
// next group's first round trip wait in the database for the head lock,
// queues appends behind it, then lets go: the queued appends are committed
// in one transaction (one xmin on their rows), and those that fail their
// expectation fail alone.
func TestGroupCommitOneTransaction(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	hold := make(chan struct{})
	var calls atomic.Int64
	s := openTest(t, schema, Options{appName: schema, beforeCommit: func() {
		if calls.Add(1) == 1 {
			<-hold
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	first := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "first", annals.NoStream, annals.EventData{Type: "Held"})
		first <- err
	}()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The first group's transaction is held before its COMMIT. The next
	// group's first round trip is sent meanwhile (writer.go invariant 6)
	// and waits in the database for the head lock: a probe append, until
	// its backend waits on a lock.
	probe := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "probe", annals.NoStream, annals.EventData{Type: "Probe"})
		probe <- err
	}()
	for {
		var waiting int
		if err := admin(t).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
			schema).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Now the writer waits for that round trip. Queue four appends with
	// NoStream on each of ten streams: one of each four must win.
	const streams, perStream = 10, 4
	type outcome struct {
		stream string
		err    error
	}
	out := make(chan outcome, streams*perStream)
	var wg sync.WaitGroup
	for i := range streams * perStream {
		wg.Go(func() {
			stream := fmt.Sprintf("g-%d", i%streams)
			_, err := s.Append(ctx, stream, annals.NoStream, annals.EventData{Type: "Grouped"})
			out <- outcome{stream, err}
		})
	}
	for s.queue.Queued() < streams*perStream {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-probe; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(out)
	wins := map[string]int{}
	for o := range out {
		switch {
		case o.err == nil:
			wins[o.stream]++
		case errors.Is(o.err, annals.ErrWrongExpectedRevision):
			var w *annals.WrongExpectedRevisionError
			if !errors.As(o.err, &w) || w.Actual != annals.Exact(0) {
				t.Fatalf("%s: conflict %v, want actual revision 0", o.stream, o.err)
			}
		default:
			t.Fatalf("%s: %v", o.stream, o.err)
		}
	}
	for i := range streams {
		if n := wins[fmt.Sprintf("g-%d", i)]; n != 1 {
			t.Fatalf("g-%d: %d appends won, want 1", i, n)
		}
	}
	var txs, rows int
	if err := admin(t).QueryRow(ctx, `SELECT count(DISTINCT xmin::text), count(*) FROM `+ident(schema, "events")+` WHERE stream LIKE 'g-%'`).Scan(&txs, &rows); err != nil {
		t.Fatal(err)
	}
	if rows != streams || txs != 1 {
		t.Fatalf("%d events in %d transactions, want %d in 1", rows, txs, streams)
	}
	t.Logf("%d queued appends: %d committed in one transaction, %d refused alone", streams*perStream, rows, streams*perStream-rows)
}
