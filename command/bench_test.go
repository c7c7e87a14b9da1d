package command_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/internal/teststores"
)

// benchClients is the number of concurrent clients of each benchmark
// (goroutines: GOMAXPROCS × parallelism, rounded up).
const benchClients = 64

// BenchmarkHandle measures commands per second with every client on one
// stream (contended: most decisions lose the race and are retried) and
// with a stream per client (uncontended), on the embedded store directly
// and through an in-process server with the official client. Loads start
// from snapshots (every 100 events), as a long-lived stream's would.
//
//	go test -run '^$' -bench BenchmarkHandle -benchtime 3s ./command
func BenchmarkHandle(b *testing.B) {
	for _, kind := range []string{"embedded", "server"} {
		for _, contended := range []bool{true, false} {
			name := kind + "/uncontended"
			if contended {
				name = kind + "/contended"
			}
			b.Run(name, func(b *testing.B) { benchHandle(b, teststores.Open(b, kind), contended) })
		}
	}
}

func benchHandle(b *testing.B, s annals.Store, contended bool) {
	ctx := context.Background()
	var streams atomic.Int64
	newStream := func() string { return fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), streams.Add(1)) }
	shared := newStream()
	h := snapshotting(s, 100, 1)
	h.Retry = command.Retry{MaxAttempts: 100, MaxBackoff: 50 * time.Millisecond}
	if _, err := h.Handle(ctx, shared, openShow{Capacity: 1 << 40}); err != nil {
		b.Fatal(err)
	}
	var conflicts, gaveUp, done atomic.Int64
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		stream := shared
		if !contended {
			stream = newStream()
			if _, err := h.Handle(ctx, stream, openShow{Capacity: 1 << 40}); err != nil {
				b.Error(err)
				return
			}
		}
		for pb.Next() {
			res, err := h.Handle(ctx, stream, take{N: 1})
			conflicts.Add(int64(max(res.Attempts-1, 0)))
			switch {
			case err == nil:
				done.Add(1)
			case errors.Is(err, command.ErrConflict):
				gaveUp.Add(1)
			default:
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "commands/s")
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "retries/op")
	b.ReportMetric(float64(gaveUp.Load()), "gave-up")
}
