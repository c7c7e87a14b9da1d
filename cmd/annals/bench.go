package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Bench limits.
const (
	benchWritersMax     = 4096
	benchDurationMax    = 10 * time.Minute
	benchWritersPerConn = 64 // Go's HTTP/2 server allows 250 streams a connection
	benchPayloadBytes   = 200
	benchReadEventsMax  = 100_000_000
)

func setupBench(fs *flag.FlagSet) runFunc {
	target := fs.String("server", "", "a running server's `URL` (kurrentdb://host:port?tls=false); default: serve a fresh store in a temporary directory")
	writersList := fs.String("writers", "1,8,64,256", "the concurrent writer `counts` to run, comma-separated")
	duration := fs.Duration("duration", 3*time.Second, "how long each run lasts")
	readEvents := fs.Int("read-events", 100_000, "how many events the $all read run reads")
	yes := fs.Bool("yes", false, "with --server: go ahead and write the benchmark's events (streams bench-*, hot-*) into that server's store")

	return func(ctx context.Context, e *env) error {
		writers, err := parseWriters(*writersList)
		if err != nil {
			return err
		}
		if *duration <= 0 || *duration > benchDurationMax {
			return usagef("--duration must be in (0, %v]", benchDurationMax)
		}
		if *readEvents < 1 || *readEvents > benchReadEventsMax {
			return usagef("--read-events must be from 1 to %d", benchReadEventsMax)
		}
		if *target != "" && !*yes {
			return usagef("--server: the benchmark appends events (thousands a second, for every run: streams bench-*, hot-*) " +
				"into that server's store, for good; add --yes to go ahead (without --server it serves a fresh scratch store)")
		}
		if *yes && *target == "" {
			return usagef("--yes goes with --server (without it the benchmark writes into a fresh scratch store)")
		}
		tuneGC() // as serve does, so the in-process server runs as it would alone
		url := *target
		var store *embedded.Store
		if url == "" {
			dir, err := os.MkdirTemp("", "annals-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			if store, err = embedded.Open(dir, embedded.Options{Logger: quiet}); err != nil {
				return err
			}
			defer store.Close()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			srv, err := server.New(store, server.Options{Logger: quiet})
			if err != nil {
				return err
			}
			go srv.Serve(l)
			defer srv.Shutdown(context.Background())
			url = "kurrentdb://" + l.Addr().String() + "?tls=false"
		}
		b := &bencher{url: url, duration: *duration}
		defer b.close()
		tw := tabwriter.NewWriter(e.out.w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "run\twriters\tover gRPC\tembedded, same run\tratio\n")
		for _, w := range writers {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			remote, err := b.appends(ctx, w)
			if err != nil {
				return err
			}
			local := "-"
			ratio := "-"
			if store != nil {
				l := benchLocal(ctx, store, w, *duration)
				local = fmt.Sprintf("%.0f appends/s", l)
				ratio = fmt.Sprintf("%.2f", remote/l)
			}
			fmt.Fprintf(tw, "append 1 event\t%d\t%.0f appends/s\t%s\t%s\n", w, remote, local, ratio)
		}
		for _, w := range writers {
			rate, err := b.batchAppends(ctx, w)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "append 1 event, BatchAppend\t%d\t%.0f appends/s\t-\t-\n", w, rate)
		}
		for _, w := range writers {
			ok, conflicts, err := b.hotStream(ctx, w)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "hot stream, expected revision\t%d\t%.0f appends/s, %.0f conflicts/s\t-\t-\n", w, ok, conflicts)
		}
		read, n, err := b.readAll(ctx, *readEvents)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "read $all (%d events)\t1\t%.0f events/s\t-\t-\n", n, read)
		return tw.Flush()
	}
}

func parseWriters(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > benchWritersMax {
			return nil, usagef("--writers: %q is not a count from 1 to %d", f, benchWritersMax)
		}
		out = append(out, n)
	}
	return out, nil
}

type bencher struct {
	url      string
	duration time.Duration
	clients  []*kurrentdb.Client
}

func (b *bencher) close() {
	for _, c := range b.clients {
		c.Close()
	}
}

// client returns the connection writer i uses: one per benchWritersPerConn.
func (b *bencher) client(i int) (*kurrentdb.Client, error) {
	for len(b.clients) <= i/benchWritersPerConn {
		cfg, err := kurrentdb.ParseConnectionString(b.url)
		if err != nil {
			return nil, usagef("--server: %v", err)
		}
		cfg.Logger = func(kurrentdb.LogLevel, string, ...any) {}
		c, err := kurrentdb.NewClient(cfg)
		if err != nil {
			return nil, err
		}
		b.clients = append(b.clients, c)
	}
	return b.clients[i/benchWritersPerConn], nil
}

// run runs fn in writers goroutines for the bench duration and returns the
// seconds it took and the first error.
func (b *bencher) run(ctx context.Context, writers int, fn func(ctx context.Context, w int, c *kurrentdb.Client) error) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.duration)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	for w := range writers {
		c, err := b.client(w)
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := fn(ctx, w, c); err != nil && ctx.Err() == nil && !runDeadline(err) {
					firstErr.CompareAndSwap(nil, &err)
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, *p
	}
	return time.Since(start).Seconds(), nil
}

// runDeadline reports the run's own deadline, as the client words it: the
// deadline travels with each call and may end it a moment before the
// run's context says so.
func runDeadline(err error) bool {
	var kerr *kurrentdb.Error
	return errors.As(err, &kerr) && kerr.Code() == kurrentdb.ErrorCodeDeadlineExceeded
}

func benchEvent() kurrentdb.EventData {
	return kurrentdb.EventData{EventID: uuid.New(), EventType: "Bench", ContentType: kurrentdb.ContentTypeBinary, Data: make([]byte, benchPayloadBytes)}
}

func (b *bencher) appends(ctx context.Context, writers int) (float64, error) {
	var n atomic.Int64
	run := uuid.NewString()[:8]
	secs, err := b.run(ctx, writers, func(ctx context.Context, w int, c *kurrentdb.Client) error {
		_, err := c.AppendToStream(ctx, fmt.Sprintf("bench-%s-%d", run, w), kurrentdb.AppendToStreamOptions{}, benchEvent())
		if err == nil {
			n.Add(1)
		}
		return err
	})
	return float64(n.Load()) / secs, err
}

// hotStream: every writer appends to one stream at the revision it last
// saw, re-reading the tail after a conflict.
func (b *bencher) hotStream(ctx context.Context, writers int) (okRate, conflictRate float64, err error) {
	var ok, conflicts atomic.Int64
	stream := "hot-" + uuid.NewString()[:8]
	states := make([]kurrentdb.StreamState, writers)
	for i := range states {
		states[i] = kurrentdb.NoStream{}
	}
	secs, err := b.run(ctx, writers, func(ctx context.Context, w int, c *kurrentdb.Client) error {
		r, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: states[w]}, benchEvent())
		var kerr *kurrentdb.Error
		switch {
		case err == nil:
			ok.Add(1)
			states[w] = kurrentdb.StreamRevision{Value: r.NextExpectedVersion}
			return nil
		case errors.As(err, &kerr) && kerr.Code() == kurrentdb.ErrorCodeWrongExpectedVersion:
			conflicts.Add(1)
			rs, err := c.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1)
			if err != nil {
				return err
			}
			defer rs.Close()
			ev, err := rs.Recv()
			if err != nil {
				return err
			}
			states[w] = kurrentdb.StreamRevision{Value: ev.Event.EventNumber}
			return nil
		}
		return err
	})
	return float64(ok.Load()) / secs, float64(conflicts.Load()) / secs, err
}

func (b *bencher) readAll(ctx context.Context, want int) (float64, int, error) {
	c, err := b.client(0)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{}, uint64(want))
	if err != nil {
		return 0, 0, err
	}
	defer rs.Close()
	n := 0
	for {
		_, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, n, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), n, nil
}

// benchLocal runs the same single-event appends on the store directly.
func benchLocal(ctx context.Context, store annals.Store, writers int, d time.Duration) float64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	run := uuid.NewString()[:8]
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("local-%s-%d", run, w)
			for ctx.Err() == nil {
				if _, err := store.Append(ctx, stream, annals.Any, annals.EventData{Type: "Bench", ContentType: annals.ContentTypeBinary, Data: make([]byte, benchPayloadBytes)}); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
