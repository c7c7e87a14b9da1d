package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmarks compare the store with a minimal Message-DB-style
// baseline measured in the same run: one table, a plain INSERT per event
// guarded by a unique (stream, position) key, one transaction per append,
// synchronous_commit on, the same payloads and the same server.
//
//	go test ./postgres -run '^$' -bench . -benchtime 3s

const benchPayloadBytes = 200

var benchWriters = []int{1, 8, 64}

// runWriters runs b.N calls of fn spread over writers goroutines; fn gets
// the writer's number and how many calls that writer made before.
func runWriters(b *testing.B, writers int, fn func(w, i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if err := fn(w, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

func benchEvents(n int) []annals.EventData {
	out := make([]annals.EventData, n)
	for i := range out {
		out[i] = annals.EventData{ID: uuid.New(), Type: "Benched", ContentType: annals.ContentTypeBinary, Data: make([]byte, benchPayloadBytes)}
	}
	return out
}

// BenchmarkAppend appends from concurrent writers, each to its own stream
// at its exact expected revision: single events, then 100-event batches.
func BenchmarkAppend(b *testing.B) {
	for _, events := range []int{1, 100} {
		for _, writers := range benchWriters {
			b.Run(fmt.Sprintf("events=%d/writers=%d", events, writers), func(b *testing.B) {
				s := openTest(b, testSchema(b), Options{})
				ctx := context.Background()
				run := uuid.NewString()[:8]
				runWriters(b, writers, func(w, i int) error {
					exp := annals.NoStream
					if i > 0 {
						exp = annals.Exact(annals.Revision(i*events - 1))
					}
					_, err := s.Append(ctx, fmt.Sprintf("bench-%s-%d", run, w), exp, benchEvents(events)...)
					return err
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
				b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// baseline is the Message-DB-style table: what a team writes by hand.
type baseline struct {
	pool   *pgxpool.Pool
	schema string
}

func openBaseline(b *testing.B, conns int) *baseline {
	schema := testSchema(b)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testDSN())
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = int32(conns)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	q := ident(schema)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+q+`;
		CREATE TABLE `+q+`.messages (
			global_position bigserial PRIMARY KEY,
			stream_name     text        NOT NULL,
			position        bigint      NOT NULL,
			id              uuid        NOT NULL UNIQUE,
			type            text        NOT NULL,
			data            bytea,
			time            timestamptz NOT NULL DEFAULT now(),
			UNIQUE (stream_name, position))`); err != nil {
		b.Fatal(err)
	}
	return &baseline{pool: pool, schema: q}
}

// append inserts events at stream positions from..from+len-1 in one
// transaction; the unique key refuses a stale position.
func (bl *baseline) append(ctx context.Context, stream string, from int, events []annals.EventData) error {
	return pgx.BeginFunc(ctx, bl.pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for i, e := range events {
			batch.Queue(`INSERT INTO `+bl.schema+`.messages (stream_name, position, id, type, data) VALUES ($1, $2, $3, $4, $5)`,
				stream, from+i, e.ID, e.Type, e.Data)
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}

func BenchmarkBaselineAppend(b *testing.B) {
	for _, events := range []int{1, 100} {
		for _, writers := range benchWriters {
			b.Run(fmt.Sprintf("events=%d/writers=%d", events, writers), func(b *testing.B) {
				bl := openBaseline(b, writers)
				ctx := context.Background()
				run := uuid.NewString()[:8]
				runWriters(b, writers, func(w, i int) error {
					return bl.append(ctx, fmt.Sprintf("bench-%s-%d", run, w), i*events, benchEvents(events))
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
				b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

const benchReadEvents = 100_000

// BenchmarkReadAll reads $all from the start: events/s.
func BenchmarkReadAll(b *testing.B) {
	s := openTest(b, testSchema(b), Options{})
	ctx := context.Background()
	for i := 0; i < benchReadEvents/100; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("read-%d", i%100), annals.Any, benchEvents(100)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		n := 0
		for _, err := range s.ReadAll(ctx, annals.ReadAllOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchReadEvents {
			b.Fatalf("read %d events, want %d", n, benchReadEvents)
		}
	}
	b.ReportMetric(float64(b.N*benchReadEvents)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBaselineReadAll reads the baseline's table in global order, in
// pages of 1,000 (keyset pagination).
func BenchmarkBaselineReadAll(b *testing.B) {
	bl := openBaseline(b, 1)
	ctx := context.Background()
	for i := 0; i < benchReadEvents/100; i++ {
		if err := bl.append(ctx, fmt.Sprintf("read-%d", i), 0, benchEvents(100)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		n, last := 0, int64(0)
		for {
			rows, err := bl.pool.Query(ctx, `SELECT global_position, stream_name, position, id, type, data, time FROM `+bl.schema+
				`.messages WHERE global_position > $1 ORDER BY global_position LIMIT 1000`, last)
			if err != nil {
				b.Fatal(err)
			}
			page := 0
			for rows.Next() {
				var e annals.Event
				var pos, rev int64
				if err := rows.Scan(&pos, &e.Stream, &rev, &e.ID, &e.Type, &e.Data, &e.Recorded); err != nil {
					b.Fatal(err)
				}
				last = pos
				page++
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			n += page
			if page == 0 {
				break
			}
		}
		if n != benchReadEvents {
			b.Fatalf("read %d events, want %d", n, benchReadEvents)
		}
	}
	b.ReportMetric(float64(b.N*benchReadEvents)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMultiAppend: appends of one event to each of 1 (a plain
// Append), 2 and 10 streams, every stream at the revision its writer last
// wrote (a check each), each writer on streams of its own. The
// multi-stream target is measured against the streams=1 line of the same
// run.
func BenchmarkMultiAppend(b *testing.B) {
	for _, streams := range []int{1, 2, 10} {
		for _, writers := range benchWriters {
			b.Run(fmt.Sprintf("streams=%d/writers=%d", streams, writers), func(b *testing.B) {
				s := openTest(b, testSchema(b), Options{})
				ctx := context.Background()
				run := uuid.NewString()[:8]
				runWriters(b, writers, func(w, i int) error {
					exp := annals.NoStream
					if i > 0 {
						exp = annals.Exact(annals.Revision(i - 1))
					}
					if streams == 1 {
						_, err := s.Append(ctx, fmt.Sprintf("bench-%s-%d", run, w), exp, benchEvents(1)...)
						return err
					}
					m := annals.MultiAppend{}
					for k := range streams {
						stream := fmt.Sprintf("bench-%s-%d-%d", run, w, k)
						m.Records = append(m.Records, annals.Record{Stream: stream, Event: benchEvents(1)[0]})
						m.Checks = append(m.Checks, annals.StreamCheck{Stream: stream, Expected: exp})
					}
					_, err := s.AppendMulti(ctx, m)
					return err
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
				b.ReportMetric(float64(b.N*streams)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkConditionalAppend: DCB appends of one tagged event, each under
// the condition that nothing with its writer's tag came after the
// writer's last append (checked in the append's transaction), beside
// plain single-stream appends in the same run (kind=append).
func BenchmarkConditionalAppend(b *testing.B) {
	for _, kind := range []string{"append", "dcb"} {
		for _, writers := range benchWriters {
			b.Run(fmt.Sprintf("kind=%s/writers=%d", kind, writers), func(b *testing.B) {
				s := openTest(b, testSchema(b), Options{})
				ctx := context.Background()
				run := uuid.NewString()[:8]
				last := make([]annals.Position, writers)
				runWriters(b, writers, func(w, i int) error {
					if kind == "append" {
						exp := annals.NoStream
						if i > 0 {
							exp = annals.Exact(annals.Revision(i - 1))
						}
						_, err := s.Append(ctx, fmt.Sprintf("bench-%s-%d", run, w), exp, benchEvents(1)...)
						return err
					}
					tag := fmt.Sprintf("writer:%s-%d", run, w)
					e := benchEvents(1)[0]
					e.Tags = []string{tag}
					r, err := s.AppendMulti(ctx, annals.MultiAppend{
						Records:   []annals.Record{{Stream: fmt.Sprintf("dcb-%s-%d", run, w), Event: e}},
						Condition: &annals.Condition{Query: annals.Query{Items: []annals.QueryItem{{Tags: []string{tag}}}}, After: last[w]},
					})
					last[w] = r.LastPosition
					return err
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			})
		}
	}
}
