package products_test

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/products"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmarks' knobs: environment variables, since a benchmark run
// takes no flags of its own without a TestMain.
const (
	// envEvents sets how many shop events BenchmarkRebuild generates.
	envEvents     = "ANNALS_BENCH_EVENTS"
	defaultEvents = 1_000_000
	// envBatches lists the Options.BatchEvents values the rebuilds try
	// (comma-separated).
	envBatches     = "ANNALS_BENCH_BATCHES"
	defaultBatches = "5000"
	// envLagSeconds sets how long BenchmarkCatchUpLag's writers append.
	envLagSeconds     = "ANNALS_BENCH_LAG_SECONDS"
	defaultLagSeconds = 5

	// The shop's mix: each product has ProductAdded, a rename and three
	// more events (renames, price changes; one product in
	// withdrawnEvery is withdrawn); one vendor per productsPerVendor
	// products; one vendor in blockedEvery is blocked halfway.
	eventsPerProduct  = 5
	productsPerVendor = 100
	blockedEvery      = 100
	withdrawnEvery    = 20

	// benchWriters append concurrently: the embedded store commits the
	// appends that wait together in one group (one fsync), so many
	// writers fill the log much faster than one.
	benchWriters = 64
	// catchUpPoll is how often a benchmark looks at the projector's
	// position; it is the resolution of the measured times.
	catchUpPoll = time.Millisecond
	// rebuildTimeout bounds one rebuild.
	rebuildTimeout = 30 * time.Minute

	// BenchmarkCatchUpLag: the writers' pace, the catalogue they write
	// to, and how often the lag is sampled through Status.
	lagRate      = 10_000 // events/s
	lagProducts  = 10_000
	lagVendors   = lagProducts / productsPerVendor
	statusSample = 10 * time.Millisecond
)

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// appendAll runs each job on benchWriters goroutines and fails b on the
// first error.
func appendAll(b *testing.B, n int, job func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	jobs := make(chan int, benchWriters)
	errs := make(chan error, benchWriters)
	for range benchWriters {
		wg.Go(func() {
			for i := range jobs {
				if err := job(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// encode panics on a failure: it runs on the writers' goroutines, and
// every type it is given is registered.
func encode(evs ...products.Event) []annals.EventData {
	out := make([]annals.EventData, len(evs))
	for i, e := range evs {
		d, err := products.Codec.Encode(e)
		if err != nil {
			panic(err)
		}
		out[i] = d
	}
	return out
}

func vendorID(i int) string  { return "v" + strconv.Itoa(i) }
func productID(i int) string { return "p" + strconv.Itoa(i) }

// generateShop appends about events shop events to s, in the mix the
// constants describe, and returns the head. Products are spread over
// vendors (product i belongs to vendor i mod vendors), and their events
// come in three rounds (added and renamed; blocks; the rest), so the log
// interleaves streams as a live shop's does.
func generateShop(b *testing.B, s annals.Store, events int) annals.Position {
	ctx := context.Background()
	nProducts := max(1, events/eventsPerProduct)
	nVendors := max(1, nProducts/productsPerVendor)
	appendAll(b, nVendors, func(i int) error {
		_, err := s.Append(ctx, products.VendorStream(vendorID(i)), annals.NoStream,
			encode(products.VendorRegistered{Name: "Vendor " + strconv.Itoa(i)})...)
		return err
	})
	appendAll(b, nProducts, func(i int) error {
		_, err := s.Append(ctx, products.ProductStream(productID(i)), annals.NoStream, encode(
			products.ProductAdded{Vendor: vendorID(i % nVendors), Title: "Product " + strconv.Itoa(i), Price: 100 + i%10_000},
			products.ProductTitleRenamed{Title: "Product " + strconv.Itoa(i) + " (new)"})...)
		return err
	})
	appendAll(b, nVendors, func(i int) error {
		if i%blockedEvery != blockedEvery-1 {
			return nil
		}
		_, err := s.Append(ctx, products.VendorStream(vendorID(i)), annals.Any, encode(products.VendorBlocked{Reason: "benchmark"})...)
		return err
	})
	appendAll(b, nProducts, func(i int) error {
		last := products.Event(products.ProductPriceChanged{Price: 300 + i%10_000})
		if i%withdrawnEvery == 0 {
			last = products.ProductWithdrawn{}
		}
		_, err := s.Append(ctx, products.ProductStream(productID(i)), annals.Any, encode(
			products.ProductPriceChanged{Price: 200 + i%10_000},
			products.ProductTitleRenamed{Title: "Product " + strconv.Itoa(i) + " (final)"},
			last)...)
		return err
	})
	var head annals.Position
	for e, err := range s.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if err != nil {
			b.Fatal(err)
		}
		head = e.Position
	}
	return head
}

// rebuild runs a fresh projector of p from position 0 until it has
// applied head, and returns how long that took.
func rebuild[M any](b *testing.B, s annals.Store, target projection.Target[M], p projection.Projection[M], head annals.Position, batch int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), rebuildTimeout)
	defer cancel()
	pr, err := projection.New(s, target, p, projection.Options{BatchEvents: batch})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := pr.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for pr.Position() < head {
		if ctx.Err() != nil {
			st, _ := pr.Status(context.Background())
			b.Fatalf("rebuild not done: %+v", st)
		}
		time.Sleep(catchUpPoll)
	}
	took := time.Since(start)
	if err := pr.Stop(); err != nil {
		b.Fatal(err)
	}
	return took
}

func batchSizes(b *testing.B) []int {
	v := os.Getenv(envBatches)
	if v == "" {
		v = defaultBatches
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want positive integers, comma-separated", envBatches, v)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkRebuild rebuilds ListOfProducts from a log of
// ANNALS_BENCH_EVENTS shop events (1,000,000 by default) in an embedded
// store, generated once for all sub-benchmarks: into a fresh pebble
// target (embedded) and into a fresh PostgreSQL schema (postgres; the
// store stays the embedded one, so the numbers differ only by target).
// Run with -benchtime=1x: one rebuild is the measurement.
func BenchmarkRebuild(b *testing.B) {
	events := envInt(b, envEvents, defaultEvents)
	dir, err := os.MkdirTemp("", "annals-bench-shop-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := embedded.Open(dir, embedded.Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	genStart := time.Now()
	head := generateShop(b, s, events)
	b.Logf("generated %d events in %v (%.0f events/s appended)", head, time.Since(genStart).Round(time.Millisecond),
		float64(head)/time.Since(genStart).Seconds())

	for _, batch := range batchSizes(b) {
		b.Run(fmt.Sprintf("embedded/batch=%d", batch), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				tdir, err := os.MkdirTemp("", "annals-bench-target-")
				if err != nil {
					b.Fatal(err)
				}
				target, err := projection.OpenPebble(tdir)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				total += rebuild(b, s, target, products.ListOfProductsKV(), head, batch)
				b.StopTimer()
				listed, err := products.ListProductsKV(target, products.MaxListed)
				if err != nil || len(listed) == 0 {
					b.Fatalf("after the rebuild: %d listed, %v", len(listed), err)
				}
				target.Close()
				os.RemoveAll(tdir)
				b.StartTimer()
			}
			b.ReportMetric(float64(head)*float64(b.N)/total.Seconds(), "events/s")
		})
	}
	for _, batch := range batchSizes(b) {
		b.Run(fmt.Sprintf("postgres/batch=%d", batch), func(b *testing.B) {
			pool := benchPool(b)
			var total time.Duration
			for range b.N {
				b.StopTimer()
				target, drop := benchPostgresTarget(b, pool)
				b.StartTimer()
				total += rebuild(b, s, target, products.ListOfProductsPostgres(), head, batch)
				b.StopTimer()
				listed, err := products.ListProductsPostgres(context.Background(), target, products.MaxListed)
				if err != nil || len(listed) == 0 {
					b.Fatalf("after the rebuild: %d listed, %v", len(listed), err)
				}
				drop()
				b.StartTimer()
			}
			b.ReportMetric(float64(head)*float64(b.N)/total.Seconds(), "events/s")
		})
	}
}

// benchPool connects to the test server, or skips (fails under CI=true).
func benchPool(b *testing.B) *pgxpool.Pool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, teststores.PostgresDSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("PostgreSQL at %s is unreachable (CI=true, so this fails): %v", teststores.PostgresDSN(), err)
		}
		b.Skipf("PostgreSQL at %s is unreachable; set ANNALS_POSTGRES_DSN: %v", teststores.PostgresDSN(), err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// benchPostgresTarget opens a target in a fresh schema and returns it
// with the func that drops it and the projection's model schema.
func benchPostgresTarget(b *testing.B, pool *pgxpool.Pool) (*projection.Postgres, func()) {
	ctx := context.Background()
	r := make([]byte, 8)
	crand.Read(r)
	schema := "annals_bench_" + hex.EncodeToString(r)
	target, err := projection.NewPostgres(ctx, pool, schema)
	if err != nil {
		b.Fatal(err)
	}
	return target, func() {
		model, err := target.ModelSchema(ctx, products.ListOfProductsName)
		if err != nil {
			b.Fatal(err)
		}
		for _, sc := range []string{model, schema} {
			if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{sc}.Sanitize()+` CASCADE`); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// ack is an append's acknowledgement: its last position and when the
// writer got it.
type ack struct {
	position annals.Position
	at       time.Time
}

// sample is the projector's position seen at a time.
type sample struct {
	at       time.Time
	position annals.Position
}

// BenchmarkCatchUpLag measures how far a live ListOfProducts projector
// (pebble target, default options) trails writers that append
// ProductPriceChanged events at a paced lagRate (10,000 events/s, one
// event per append, benchWriters concurrent writers) to an embedded
// store for ANNALS_BENCH_LAG_SECONDS (5 by default). It reports the lag
// in events (Status().Lag, sampled every 10 ms) and in time (from each
// append's acknowledgement to the first look, every millisecond, at a
// position that has passed it; 0 when the projector applied it before
// the writer heard back). Run with -benchtime=1x.
func BenchmarkCatchUpLag(b *testing.B) {
	seconds := envInt(b, envLagSeconds, defaultLagSeconds)
	for range b.N {
		b.StopTimer()
		s, err := embedded.Open(b.TempDir(), embedded.Options{Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		appendAll(b, lagVendors, func(i int) error {
			_, err := s.Append(ctx, products.VendorStream(vendorID(i)), annals.NoStream,
				encode(products.VendorRegistered{Name: "Vendor " + strconv.Itoa(i)})...)
			return err
		})
		appendAll(b, lagProducts, func(i int) error {
			_, err := s.Append(ctx, products.ProductStream(productID(i)), annals.NoStream,
				encode(products.ProductAdded{Vendor: vendorID(i % lagVendors), Title: "Product " + strconv.Itoa(i), Price: 100})...)
			return err
		})
		target, err := projection.OpenPebble(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		pr, err := projection.New(s, target, products.ListOfProductsKV(), projection.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := pr.Start(ctx); err != nil {
			b.Fatal(err)
		}
		for pr.Position() < s.Position() {
			time.Sleep(catchUpPoll)
		}
		b.StartTimer()

		acks, samples, lags, offered := runPacedWriters(b, s, pr, time.Duration(seconds)*time.Second)

		b.StopTimer()
		if err := pr.Stop(); err != nil {
			b.Fatal(err)
		}
		target.Close()
		s.Close()
		reportLag(b, acks, samples, lags, offered)
	}
}

// runPacedWriters appends at lagRate for d while it samples the
// projector, then waits for the projector to apply everything.
func runPacedWriters(b *testing.B, s *embedded.Store, pr *projection.Projector[projection.KV], d time.Duration) (acks []ack, samples []sample, lags []uint64, offered float64) {
	ctx := context.Background()
	var mu sync.Mutex
	jobs := make(chan struct{}, lagRate) // a second of backlog at most
	var wg sync.WaitGroup
	for w := range benchWriters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range jobs {
				i := rng.IntN(lagProducts)
				res, err := s.Append(ctx, products.ProductStream(productID(i)), annals.Any,
					encode(products.ProductPriceChanged{Price: 1 + rng.IntN(products.MaxPrice)})...)
				if err != nil {
					b.Error(err)
					return
				}
				now := time.Now()
				mu.Lock()
				acks = append(acks, ack{res.LastPosition, now})
				mu.Unlock()
			}
		})
	}

	stop := make(chan struct{})
	var samplers sync.WaitGroup
	samplers.Go(func() {
		for {
			samples = append(samples, sample{time.Now(), pr.Position()})
			select {
			case <-stop:
				return
			case <-time.After(catchUpPoll):
			}
		}
	})
	samplers.Go(func() {
		tick := time.NewTicker(statusSample)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			st, err := pr.Status(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			lags = append(lags, st.Lag)
		}
	})

	// The pacer hands out what is due every millisecond; a full backlog
	// means the writers cannot keep the pace (reported as offered).
	start := time.Now()
	issued := 0
	pace := time.NewTicker(time.Millisecond)
	for now := range pace.C {
		elapsed := now.Sub(start)
		if elapsed >= d {
			break
		}
		for due := int(elapsed.Seconds() * lagRate); issued < due; issued++ {
			select {
			case jobs <- struct{}{}:
			default:
				issued = due // dropped: the writers are behind
			}
		}
	}
	pace.Stop()
	close(jobs)
	wg.Wait()
	offered = float64(len(acks)) / time.Since(start).Seconds()
	head := s.Position()
	deadline := time.Now().Add(rebuildTimeout)
	for pr.Position() < head && time.Now().Before(deadline) {
		time.Sleep(catchUpPoll)
	}
	time.Sleep(2 * catchUpPoll) // a last sample past the head
	close(stop)
	samplers.Wait()
	return acks, samples, lags, offered
}

func percentile[T any](sorted []T, p float64) T {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func reportLag(b *testing.B, acks []ack, samples []sample, lags []uint64, offered float64) {
	if len(acks) == 0 || len(lags) == 0 {
		b.Fatal("nothing measured")
	}
	slices.SortFunc(acks, func(x, y ack) int { return cmp.Compare(x.position, y.position) })
	// samples are in time order and positions never decrease along them:
	// walk both lists once.
	delays := make([]time.Duration, 0, len(acks))
	j := 0
	for _, a := range acks {
		for j < len(samples) && samples[j].position < a.position {
			j++
		}
		if j == len(samples) {
			b.Fatalf("position %d never applied", a.position)
		}
		delays = append(delays, max(0, samples[j].at.Sub(a.at)))
	}
	slices.Sort(delays)
	slices.Sort(lags)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(offered, "appends/s")
	b.ReportMetric(float64(percentile(lags, 0.5)), "lag-p50-events")
	b.ReportMetric(float64(percentile(lags, 0.99)), "lag-p99-events")
	b.ReportMetric(float64(lags[len(lags)-1]), "lag-max-events")
	b.ReportMetric(ms(percentile(delays, 0.5)), "lag-p50-ms")
	b.ReportMetric(ms(percentile(delays, 0.99)), "lag-p99-ms")
	b.ReportMetric(ms(delays[len(delays)-1]), "lag-max-ms")
}
