package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The ordering proof: a reader that has delivered position P never later
// meets an event ordered before P. Many writers hold their transactions
// open for random times (the beforeCommit hook sleeps with the head of $all
// locked, just before COMMIT) while subscribers on several Stores follow
// $all; every subscriber must get every acknowledged event exactly once, in
// one and the same order. Beside them runs the naive reader the field got
// wrong for years (SELECT ... WHERE position > $last), over this store's
// table, where it must miss nothing; TestNaiveSequenceReaderSkips shows the
// same reader missing events of a sequence-numbered table.

const (
	orderWriters     = 32
	orderStores      = 4 // writers and subscribers spread over them: concurrent transactions
	orderSubscribers = 4
	orderMaxDelay    = 2 * time.Millisecond // inside a transaction, before COMMIT
)

// orderDuration is how long the writers write: 4 s, 1 s with -short, 30 s
// with -long (go test ./postgres/ -run Order -long).
func orderDuration() time.Duration {
	switch {
	case *long:
		return 30 * time.Second
	case testing.Short():
		return time.Second
	}
	return 4 * time.Second
}

// randomDelay sleeps up to max, as a slow transaction would.
func randomDelay(max time.Duration) {
	time.Sleep(time.Duration(rand.Int64N(int64(max) + 1)))
}

func TestOrderUnderConcurrentDelayedCommits(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	stores := make([]*Store, orderStores)
	for i := range stores {
		stores[i] = openTest(t, schema, Options{
			// Small groups: more, shorter transactions queue on the head.
			GroupOps:     4,
			MaxConns:     2,
			beforeCommit: func() { randomDelay(orderMaxDelay) },
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), orderDuration()+hangGuard)
	defer cancel()

	// Subscribers, live before the first write.
	type delivered struct {
		pos annals.Position
		id  uuid.UUID
	}
	subs := make([][]delivered, orderSubscribers)
	var subMu sync.Mutex // guards subs
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	var subWG sync.WaitGroup
	subErrs := make(chan error, orderSubscribers+1)
	caughtUp := make(chan struct{}, orderSubscribers)
	for i := range orderSubscribers {
		s := stores[i%len(stores)]
		subWG.Go(func() {
			for m, err := range s.SubscribeToAll(subCtx, annals.SubscribeAllOptions{}) {
				if err != nil {
					if subCtx.Err() == nil {
						subErrs <- fmt.Errorf("subscriber %d: %w", i, err)
					}
					return
				}
				switch m.Kind {
				case annals.MessageCaughtUp:
					caughtUp <- struct{}{}
				case annals.MessageEvent:
					subMu.Lock()
					subs[i] = append(subs[i], delivered{m.Event.Position, m.Event.ID})
					subMu.Unlock()
				}
			}
		})
	}
	for range orderSubscribers {
		select {
		case <-caughtUp:
		case err := <-subErrs:
			t.Fatal(err)
		}
	}

	// The naive reader, over this store's table: it must miss nothing,
	// because positions become visible in order.
	naiveStop := make(chan struct{})
	naiveSeen := map[int64]bool{}
	var naiveWG sync.WaitGroup
	naiveWG.Go(func() {
		naiveRead(ctx, admin(t), `SELECT position FROM `+ident(schema, "events")+` WHERE position > $1 ORDER BY position LIMIT 1000`, naiveStop, naiveSeen)
	})

	// Writers.
	type ack struct {
		pos annals.Position
		id  uuid.UUID
	}
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
	)
	stopAt := time.Now().Add(orderDuration())
	for w := range orderWriters {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for i := 0; time.Now().Before(stopAt); i++ {
				id := uuid.New()
				stream := fmt.Sprintf("order-%d", rand.IntN(16))
				res, err := s.Append(ctx, stream, annals.Any, annals.EventData{ID: id, Type: "Ordered", Data: fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i)})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{res.LastPosition, id})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last := annals.Position(len(acks))
	// Give the subscribers time to deliver the last events, then stop them.
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		subMu.Lock()
		done := true
		for _, got := range subs {
			done = done && annals.Position(len(got)) >= last
		}
		subMu.Unlock()
		if done {
			break
		}
	}
	stopSubs()
	subWG.Wait()
	close(naiveStop)
	naiveWG.Wait()
	select {
	case err := <-subErrs:
		t.Fatal(err)
	default:
	}

	byPos := make([]uuid.UUID, last+1)
	for _, a := range acks {
		if a.pos == 0 || a.pos > last || byPos[a.pos] != (uuid.UUID{}) {
			t.Fatalf("acknowledged position %d: outside 1..%d or acknowledged twice", a.pos, last)
		}
		byPos[a.pos] = a.id
	}
	for i, got := range subs {
		if annals.Position(len(got)) != last {
			t.Fatalf("subscriber %d: %d events, want %d", i, len(got), last)
		}
		for j, d := range got {
			if d.pos != annals.Position(j+1) || d.id != byPos[d.pos] {
				t.Fatalf("subscriber %d: event %d is position %d id %s, want position %d id %s", i, j, d.pos, d.id, j+1, byPos[j+1])
			}
		}
	}
	missed := 0
	for p := int64(1); p <= int64(last); p++ {
		if !naiveSeen[p] {
			missed++
		}
	}
	if missed > 0 {
		t.Fatalf("the naive position > $last reader missed %d of %d events of the store's table", missed, last)
	}
	t.Logf("%d events from %d writers on %d stores; %d subscribers each got all of them in one order; the naive reader over the store's table missed none",
		last, orderWriters, orderStores, orderSubscribers)
}

// naiveRead follows a table with "WHERE position > $last", the pattern that
// is wrong with sequence-assigned positions, recording every position seen,
// until stop is closed (then reads once more, to the end).
func naiveRead(ctx context.Context, pool *pgxpool.Pool, query string, stop <-chan struct{}, seen map[int64]bool) {
	var last int64
	final := false
	for {
		rows, err := pool.Query(ctx, query, last)
		if err != nil {
			return
		}
		n := 0
		for rows.Next() {
			var p int64
			if rows.Scan(&p) == nil {
				seen[p] = true
				last = max(last, p)
				n++
			}
		}
		rows.Close()
		if n > 0 {
			continue
		}
		if final {
			return
		}
		select {
		case <-stop:
			final = true
		case <-ctx.Done():
			return
		default:
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// TestNaiveSequenceReaderSkips is the counter-example, not a test of the
// store: positions from a sequence (bigserial) are assigned at INSERT and
// become visible at COMMIT, so with transactions of random length a reader
// doing "WHERE position > $last" passes positions still in flight and never
// sees them. The test fails if the reader misses nothing, which would mean
// it no longer demonstrates the hazard.
func TestNaiveSequenceReaderSkips(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	pool := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), orderDuration()+hangGuard)
	defer cancel()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+ident(schema)); err != nil {
		t.Fatal(err)
	}
	table := ident(schema, "naive_events")
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (position bigserial PRIMARY KEY, writer int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	cfg := pool.Config().Copy()
	cfg.MaxConns = 8
	writers, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer writers.Close()

	stop := make(chan struct{})
	seen := map[int64]bool{}
	var readerWG sync.WaitGroup
	readerWG.Go(func() {
		naiveRead(ctx, pool, `SELECT position FROM `+table+` WHERE position > $1 ORDER BY position LIMIT 1000`, stop, seen)
	})
	var committed atomic.Int64
	var wg sync.WaitGroup
	stopAt := time.Now().Add(min(orderDuration(), 2*time.Second))
	for w := range orderWriters {
		wg.Go(func() {
			for time.Now().Before(stopAt) {
				err := pgx.BeginFunc(ctx, writers, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (writer) VALUES ($1)`, w); err != nil {
						return err
					}
					randomDelay(orderMaxDelay)
					return nil
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				committed.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	readerWG.Wait()
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != committed.Load() {
		t.Fatalf("%d rows, %d commits", total, committed.Load())
	}
	missed := total - int64(len(seen))
	t.Logf("counter-example: the naive reader missed %d of %d committed events of a sequence-numbered table", missed, total)
	if missed == 0 {
		t.Fatalf("the naive reader missed nothing in %d events: the counter-example no longer shows the hazard", total)
	}
}
