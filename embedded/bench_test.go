package embedded

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Benchmarks of the durable store. Every append is durable (fsynced) before
// it returns. Results and the commands are in docs/benchmarks.md.

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// runWriters splits b.N appends over writers goroutines, each on its own
// stream, and reports events/s.
func runWriters(b *testing.B, s *Store, writers, eventsPerAppend int) {
	runWritersIDs(b, s, writers, eventsPerAppend, false)
}

// runWritersIDs is runWriters, with the caller's own random event ids if
// clientIDs (as gRPC clients send them).
func runWritersIDs(b *testing.B, s *Store, writers, eventsPerAppend int, clientIDs bool) {
	payload := make([]byte, 200)
	template := make([]annals.EventData, eventsPerAppend)
	for i := range template {
		template[i] = annals.EventData{Type: "BenchEvent", Data: payload}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("bench-%d", w)
			events := slices.Clone(template)
			for next.Add(1) <= int64(b.N) {
				if clientIDs {
					for i := range events {
						events[i].ID = uuid.New()
					}
				}
				if _, err := s.Append(context.Background(), stream, annals.Any, events...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*eventsPerAppend)/elapsed.Seconds(), "events/s")
}

// BenchmarkAppend: single 200-byte events, durable before each append returns.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			runWriters(b, openBench(b), writers, 1)
		})
	}
}

// BenchmarkAppendBatch: 100 events of 200 bytes per append.
func BenchmarkAppendBatch(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			runWriters(b, openBench(b), writers, 100)
		})
	}
}

// BenchmarkReadAll reads a log of 1,000,000 events of 200 bytes (in 10,000
// streams) from start to end, per iteration, once with the default block
// cache (128 MiB: smaller than the log, so each pass decompresses blocks
// again) and once with a cache that holds it all.
func BenchmarkReadAll(b *testing.B) {
	for _, c := range []struct {
		name  string
		bytes int64
	}{{"cache=128MiB", 0}, {"cache=1GiB", 1 << 30}} {
		b.Run(c.name, func(b *testing.B) { benchReadAll(b, c.bytes) })
	}
}

func benchReadAll(b *testing.B, cacheBytes int64) {
	const total = 1_000_000
	s, err := Open(b.TempDir(), Options{BlockCacheBytes: cacheBytes, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 200)
	batch := make([]annals.EventData, 1000)
	for i := range batch {
		batch[i] = annals.EventData{Type: "BenchEvent", Data: payload}
	}
	for i := 0; i < total/len(batch); i++ {
		if _, err := s.Append(context.Background(), fmt.Sprintf("read-%d", i%10_000), annals.Any, batch...); err != nil {
			b.Fatal(err)
		}
	}
	// Measure the store at rest: the load's flushes and compactions would
	// otherwise compete with the read for the two cores.
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		n := 0
		for _, err := range s.ReadAll(context.Background(), annals.ReadAllOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSubscribeLag appends b.N single events at 10,000 appends/s (from
// 32 concurrent appenders: one durable append takes longer than 100 µs)
// and reports the 99th and 50th percentiles of the time from an append's
// acknowledgement to its delivery to a live $all subscriber (p99-ns,
// p50-ns), and the rate achieved (appends/s). Delivery may precede the
// acknowledgement (the watermark moves before the answers go out); such
// lags count as 0.
func BenchmarkSubscribeLag(b *testing.B) {
	const (
		rate      = 10_000 // appends per second
		appenders = 32
	)
	s := openBench(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acked := make([]atomic.Int64, b.N+1) // position -> ack time (unix ns)
	lags := make([]int64, 0, b.N)
	delivered := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(delivered)
		for m, err := range s.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: annals.Start}) {
			if err != nil {
				return
			}
			if m.Kind == annals.MessageCaughtUp {
				close(ready)
				continue
			}
			if m.Kind != annals.MessageEvent {
				continue
			}
			now := time.Now().UnixNano()
			pos := m.Event.Position
			// Delivered before the appender recorded its ack: lag 0.
			acked[pos].CompareAndSwap(0, now)
			lags = append(lags, max(0, now-acked[pos].Load()))
			if len(lags) == b.N {
				return
			}
		}
	}()
	<-ready
	payload := make([]byte, 200)
	tickets := make(chan struct{}, appenders)
	var wg sync.WaitGroup
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tickets {
				r, err := s.Append(ctx, "lag", annals.Any, annals.EventData{Type: "Lag", Data: payload})
				if err != nil {
					b.Error(err)
					return
				}
				acked[r.LastPosition].CompareAndSwap(0, time.Now().UnixNano())
			}
		}()
	}
	interval := time.Second / rate
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		tickets <- struct{}{}
	}
	close(tickets)
	wg.Wait()
	elapsed := time.Since(start)
	<-delivered
	b.StopTimer()
	if len(lags) != b.N {
		b.Fatalf("delivered %d of %d events", len(lags), b.N)
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)*99/100]), "p99-ns")
	b.ReportMetric(float64(lags[len(lags)/2]), "p50-ns")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
}

// BenchmarkManyStreams appends one 200-byte event to each of b.N new
// streams (64 writers, expected NoStream), with a stream-head cache of
// 1,000,000: past that every append misses the cache and reads the head
// from storage. Run with -benchtime 10000000x for ten million streams.
func BenchmarkManyStreams(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 200)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				stream := "many-" + strconv.FormatInt(n, 10)
				if _, err := s.Append(context.Background(), stream, annals.NoStream, annals.EventData{Type: "Created", Data: payload}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.StopTimer()
	// Every stream is there and its head is right, in or out of the cache.
	for _, n := range []int{1, max(1, b.N/2), b.N} {
		stream := "many-" + strconv.Itoa(n)
		if _, err := s.Append(context.Background(), stream, annals.Exact(0)); err != nil {
			b.Fatalf("%s: %v", stream, err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// BenchmarkAppendClientIDs is BenchmarkAppend with the caller's own random
// event ids, as every gRPC client sends: each id is checked against the
// id index (an in-memory filter first, the engine only on a hit).
func BenchmarkAppendClientIDs(b *testing.B) {
	for _, writers := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			runWritersIDs(b, openBench(b), writers, 1, true)
		})
	}
}

// BenchmarkMultiAppend: appends of one 200-byte event to each of 1 (a
// plain Append), 2 and 10 streams, every stream at the revision its
// writer last wrote (a check each), each writer on streams of its own.
// Reports appends/s: the multi-stream target is measured against the
// streams=1 line of the same run.
func BenchmarkMultiAppend(b *testing.B) {
	for _, streams := range []int{1, 2, 10} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("streams=%d/writers=%d", streams, writers), func(b *testing.B) {
				s := openBench(b)
				benchMulti(b, writers, streams, s.Append, s.AppendMulti)
			})
		}
	}
}

type appendFunc func(context.Context, string, annals.ExpectedRevision, ...annals.EventData) (annals.AppendResult, error)

type multiFunc func(context.Context, annals.MultiAppend) (annals.MultiAppendResult, error)

// benchMulti splits b.N appends over writers, each appending one event to
// each of its streams per append, at the revisions it wrote last.
func benchMulti(b *testing.B, writers, streams int, single appendFunc, multi multiFunc) {
	payload := make([]byte, 200)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; next.Add(1) <= int64(b.N); n++ {
				expected := annals.NoStream
				if n > 0 {
					expected = annals.Exact(annals.Revision(n - 1))
				}
				var err error
				if streams == 1 {
					_, err = single(context.Background(), fmt.Sprintf("bench-%d", w), expected, annals.EventData{Type: "BenchEvent", Data: payload})
				} else {
					m := annals.MultiAppend{}
					for i := range streams {
						stream := fmt.Sprintf("bench-%d-%d", w, i)
						m.Records = append(m.Records, annals.Record{Stream: stream, Event: annals.EventData{Type: "BenchEvent", Data: payload}})
						m.Checks = append(m.Checks, annals.StreamCheck{Stream: stream, Expected: expected})
					}
					_, err = multi(context.Background(), m)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(b.N*streams)/elapsed.Seconds(), "events/s")
}

// BenchmarkConditionalAppend: DCB appends of one tagged 200-byte event,
// each under the condition that nothing with its writer's tag came after
// the writer's last append (the condition is checked by the writer, in
// the group commit), beside plain single-stream appends in the same run
// (kind=append).
func BenchmarkConditionalAppend(b *testing.B) {
	for _, kind := range []string{"append", "dcb"} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("kind=%s/writers=%d", kind, writers), func(b *testing.B) {
				s := openBench(b)
				if kind == "append" {
					benchMulti(b, writers, 1, s.Append, s.AppendMulti)
					return
				}
				benchConditional(b, writers, s.AppendMulti)
			})
		}
	}
}

// benchConditional splits b.N conditional appends over writers.
func benchConditional(b *testing.B, writers int, multi multiFunc) {
	payload := make([]byte, 200)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := fmt.Sprintf("writer:%d", w)
			q := annals.Query{Items: []annals.QueryItem{{Tags: []string{tag}}}}
			var after annals.Position
			for next.Add(1) <= int64(b.N) {
				r, err := multi(context.Background(), annals.MultiAppend{
					Records:   []annals.Record{{Stream: fmt.Sprintf("dcb-%d", w), Event: annals.EventData{Type: "BenchEvent", Data: payload, Tags: []string{tag}}}},
					Condition: &annals.Condition{Query: q, After: after},
				})
				if err != nil {
					b.Error(err)
					return
				}
				after = r.LastPosition
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
}
