package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/annals/annals"
)

// BenchmarkAppend appends single events from concurrent writers, each to
// its own stream with Any: the group-commit path.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openTest(b, testSchema(b), Options{})
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism((writers + 1) / 2) // RunParallel runs parallelism×GOMAXPROCS goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				stream := fmt.Sprintf("bench-%d", n.Add(1))
				for pb.Next() {
					if _, err := s.Append(ctx, stream, annals.Any, annals.EventData{Type: "Benched", Data: []byte(`{}`)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}
