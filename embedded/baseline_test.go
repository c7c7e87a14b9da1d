package embedded

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/annals/annals/internal/core"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkRawFileBaseline is the ceiling the store is measured against: a
// raw append-only file with the same group commit (one writer goroutine
// takes every pending append, writes them as CRC-framed records, one
// fdatasync, then answers them all). No index, no reads: what the disk and
// the scheduler allow.
// baselineGroupOps bounds a baseline writer's group, as the store's
// GroupOps default does.
const baselineGroupOps = 2048

func BenchmarkRawFileBaseline(b *testing.B) {
	for _, writers := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			type req struct {
				payload []byte
				done    chan struct{}
			}
			reqs := make(chan *req, 4096)
			stop := make(chan struct{})
			var writerWG sync.WaitGroup
			writerWG.Add(1)
			go func() {
				defer writerWG.Done()
				var buf []byte
				for {
					var first *req
					select {
					case first = <-reqs:
					case <-stop:
						return
					}
					group := core.Collect(reqs, first, func(*req) int { return 0 }, baselineGroupOps, math.MaxInt)
					buf = buf[:0]
					for _, r := range group {
						buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.payload)))
						buf = binary.LittleEndian.AppendUint32(buf, crc32.ChecksumIEEE(r.payload))
						buf = append(buf, r.payload...)
					}
					if _, err := f.Write(buf); err != nil {
						panic(err)
					}
					if err := syscall.Fdatasync(int(f.Fd())); err != nil {
						panic(err)
					}
					for _, r := range group {
						close(r.done)
					}
				}
			}()
			var next atomic.Int64
			var wg sync.WaitGroup
			payload := make([]byte, 200)
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						r := &req{payload: payload, done: make(chan struct{})}
						reqs <- r
						<-r.done
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.StopTimer()
			close(stop)
			writerWG.Wait()
		})
	}
}

// BenchmarkPebbleBaseline is the engine's own ceiling for this design: one
// writer goroutine takes every pending append and commits them as one
// pebble batch with a synchronous WAL fsync, one 250-byte key per event,
// no planning, no index. The store does the same plus expectation checks,
// the stream and id indexes, and chunk encoding.
func BenchmarkPebbleBaseline(b *testing.B) {
	for _, writers := range []int{64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, MemTableSize: 64 << 20, Logger: quietLogger{slog.New(slog.NewTextHandler(io.Discard, nil))}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			type req struct{ done chan struct{} }
			reqs := make(chan *req, 4096)
			stop := make(chan struct{})
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				var pos uint64
				payload := make([]byte, 250)
				for {
					var first *req
					select {
					case first = <-reqs:
					case <-stop:
						return
					}
					group := core.Collect(reqs, first, func(*req) int { return 0 }, baselineGroupOps, math.MaxInt)
					batch := db.NewBatch()
					for range group {
						pos++
						if err := batch.Set(binary.BigEndian.AppendUint64([]byte{'E'}, pos), payload, nil); err != nil {
							panic(err)
						}
					}
					if err := batch.Commit(pebble.Sync); err != nil {
						panic(err)
					}
					batch.Close()
					for _, r := range group {
						close(r.done)
					}
				}
			}()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						r := &req{done: make(chan struct{})}
						reqs <- r
						<-r.done
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.StopTimer()
			close(stop)
			<-stopped
		})
	}
}
