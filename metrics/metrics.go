// Package metrics measures an Annals store and the server in front of it,
// in the Prometheus text format: appends by outcome, their latency, the
// group commits and their sync time, reads, live subscriptions and their
// lag, gRPC calls, persistent subscription groups, projections, disk use
// and the Go runtime. `annals serve` serves them at GET /metrics;
// docs/metrics.md lists every series.
//
// Metrics wraps a store (Store) and takes the store's group commits
// (ObserveGroupCommit as its OnGroupCommit option). What it watches
// besides (groups, projections, disk) it asks for when scraped, never in
// the background.
package metrics

import (
	"net/http"
	"time"

	"github.com/annals/annals"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// Limits of a scrape.
const (
	// ScrapeTimeout bounds what a scrape waits for the sources it asks
	// (projections' statuses, the disk): past it they are left out of
	// that scrape.
	ScrapeTimeout = 5 * time.Second
	// MaxScrapesInFlight bounds the scrapes served at once; more are
	// answered 503.
	MaxScrapesInFlight = 4
)

// Append outcomes, the values of the outcome label.
const (
	OutcomeOK            = "ok"
	OutcomeWrongExpected = "wrong_expected"
	OutcomeInvalid       = "invalid"        // annals.ErrInvalidInput: refused, nothing written
	OutcomeDeleted       = "stream_deleted" // annals.ErrStreamDeleted
	OutcomeDuplicate     = "duplicate_id"   // annals.ErrDuplicateEventID
	OutcomeError         = "error"          // anything else: closed, disk full, the caller gave up
)

// latencyBuckets cover a write from a fast fsync (0.1 ms) to a stalled
// disk (10 s).
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)

// Metrics holds the series of one process. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	appends      *prometheus.CounterVec
	appendsOK    prometheus.Counter // appends' child for OutcomeOK, looked up once
	appendEvents prometheus.Counter
	appendBytes  prometheus.Counter
	appendTime   prometheus.Histogram
	deletes      *prometheus.CounterVec
	syncTime     prometheus.Histogram
	groupWrites  prometheus.Histogram
	groupEvents  prometheus.Histogram
	reads        *prometheus.CounterVec
	readEvents   *prometheus.CounterVec
	subsLive     *prometheus.GaugeVec
	subEvents    *prometheus.CounterVec
	calls        *prometheus.CounterVec
	callTime     *prometheus.HistogramVec

	subs *subscriptions
}

// New makes the series, on a registry of their own with the Go runtime's
// and the process's.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), subs: newSubscriptions()}
	f := factory{m.reg}
	m.appends = f.counterVec("annals_appends_total", "Appends, by outcome.", "outcome")
	m.appendsOK = m.appends.WithLabelValues(OutcomeOK)
	m.appendEvents = f.counter("annals_appended_events_total", "Events written by appends that succeeded.")
	m.appendBytes = f.counter("annals_appended_bytes_total", "Bytes (data, metadata, type) of the events written.")
	m.appendTime = f.histogram("annals_append_duration_seconds", "Time of an append, from call to answer, any outcome.", latencyBuckets)
	m.deletes = f.counterVec("annals_deletes_total", "Deletes and tombstones, by kind and outcome.", "kind", "outcome")
	m.syncTime = f.histogram("annals_store_sync_duration_seconds",
		"Time for a group commit to become durable: the WAL write and fdatasync (embedded), the rows and COMMIT (postgres).", latencyBuckets)
	m.groupWrites = f.histogram("annals_group_commit_writes", "Writes (appends, deletes, metadata) per group commit.", prometheus.ExponentialBuckets(1, 2, 12))
	m.groupEvents = f.histogram("annals_group_commit_events", "Events per group commit.", prometheus.ExponentialBuckets(1, 2, 16))
	m.reads = f.counterVec("annals_reads_total", "Reads, by what they read (stream, all).", "kind")
	m.readEvents = f.counterVec("annals_read_events_total", "Events returned by reads, by what they read.", "kind")
	m.subsLive = f.gaugeVec("annals_subscriptions", "Live catch-up subscriptions, by what they follow (stream, all).", "kind")
	m.subEvents = f.counterVec("annals_subscription_events_total", "Events delivered by subscriptions, by what they follow.", "kind")
	m.calls = f.counterVec("annals_grpc_calls_total", "gRPC calls finished, by method and status code.", "method", "code")
	m.callTime = f.histogramVec("annals_grpc_call_duration_seconds",
		"Time of unary gRPC calls, by method (streaming calls last as long as their client keeps them).", latencyBuckets, "method")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series a dashboard sums shows from the start, at zero.
	for _, o := range []string{OutcomeOK, OutcomeWrongExpected, OutcomeInvalid, OutcomeDeleted, OutcomeDuplicate, OutcomeError} {
		m.appends.WithLabelValues(o)
	}
	for _, kind := range []string{"stream", "all"} {
		m.reads.WithLabelValues(kind)
		m.readEvents.WithLabelValues(kind)
		m.subsLive.WithLabelValues(kind)
		m.subEvents.WithLabelValues(kind)
	}
	return m
}

// Registry is the registry of m's series, to add others to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the series in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: MaxScrapesInFlight,
		Timeout:             ScrapeTimeout,
		ErrorHandling:       promhttp.ContinueOnError,
	})
}

// ObserveGroupCommit counts one group commit; it is what the stores'
// OnGroupCommit option takes.
func (m *Metrics) ObserveGroupCommit(c annals.GroupCommit) {
	m.syncTime.Observe(c.Sync.Seconds())
	m.groupWrites.Observe(float64(c.Writes))
	m.groupEvents.Observe(float64(c.Events))
}

// ObserveCall counts one finished gRPC call. d is observed for unary
// calls only.
func (m *Metrics) ObserveCall(method string, code codes.Code, unary bool, d time.Duration) {
	m.calls.WithLabelValues(method, code.String()).Inc()
	if unary {
		m.callTime.WithLabelValues(method).Observe(d.Seconds())
	}
}

// factory registers what it makes on reg.
type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
