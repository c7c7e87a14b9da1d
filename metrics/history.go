package metrics

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// History limits: a sample every SampleInterval, the last HistorySamples
// kept (15 minutes).
const (
	SampleInterval = 5 * time.Second
	HistorySamples = 180
	// maxProjectionSeries bounds the projections whose lag a sample keeps.
	maxProjectionSeries = 32
)

// Sample is what the console's dashboard charts at one instant: rates
// over the interval since the previous sample, quantiles of the
// histograms' observations in that interval, and gauges as they were.
type Sample struct {
	At                  time.Time         `json:"at"`
	AppendsPerSecond    float64           `json:"appendsPerSecond"`
	EventsWrittenPerSec float64           `json:"eventsWrittenPerSecond"`
	EventsReadPerSecond float64           `json:"eventsReadPerSecond"`
	AppendP50Seconds    float64           `json:"appendP50Seconds"`
	AppendP99Seconds    float64           `json:"appendP99Seconds"`
	SyncP50Seconds      float64           `json:"syncP50Seconds"`
	SyncP99Seconds      float64           `json:"syncP99Seconds"`
	SubscriptionLag     float64           `json:"subscriptionLag"`
	ProjectionLag       map[string]uint64 `json:"projectionLag,omitempty"`
	DiskUsedBytes       float64           `json:"diskUsedBytes"`
}

// History samples m at an interval and keeps the last HistorySamples,
// for the console. Run it with Run.
type History struct {
	m     *Metrics
	every time.Duration

	mu      sync.Mutex
	samples []Sample // oldest first, at most HistorySamples
	prev    snapshot // the last gather, for the next rates
}

// NewHistory makes the history of m's series, sampled every interval
// (SampleInterval if zero).
func NewHistory(m *Metrics, interval time.Duration) *History {
	if interval <= 0 {
		interval = SampleInterval
	}
	return &History{m: m, every: interval}
}

// Interval is the time between two samples.
func (h *History) Interval() time.Duration { return h.every }

// Run samples until ctx is done.
func (h *History) Run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	h.sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.sample(now)
		}
	}
}

// Samples returns the samples kept, oldest first.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Sample(nil), h.samples...)
}

func (h *History) sample(now time.Time) {
	families, _ := h.m.reg.Gather() // a failing source leaves its series out
	cur := snapshotOf(families, now)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.prev.at.IsZero() {
		h.samples = append(h.samples, cur.since(h.prev))
		if len(h.samples) > HistorySamples {
			h.samples = append(h.samples[:0], h.samples[len(h.samples)-HistorySamples:]...)
		}
	}
	h.prev = cur
}

// snapshot is one gather, reduced to what the samples need.
type snapshot struct {
	at                         time.Time
	appends, written, read     float64
	appendBuckets, syncBuckets []bucket
	subLag, disk               float64
	projectionLag              map[string]uint64
}

type bucket struct{ upper, count float64 }

func snapshotOf(families []*dto.MetricFamily, at time.Time) snapshot {
	s := snapshot{at: at, projectionLag: map[string]uint64{}}
	for _, f := range families {
		ms := f.GetMetric()
		switch f.GetName() {
		case "annals_appends_total":
			s.appends = sumCounters(ms)
		case "annals_appended_events_total":
			s.written = sumCounters(ms)
		case "annals_read_events_total", "annals_subscription_events_total":
			s.read += sumCounters(ms)
		case "annals_append_duration_seconds":
			s.appendBuckets = buckets(ms)
		case "annals_store_sync_duration_seconds":
			s.syncBuckets = buckets(ms)
		case "annals_subscription_max_lag_events":
			s.subLag = ms[0].GetGauge().GetValue()
		case "annals_store_used_bytes":
			s.disk = ms[0].GetGauge().GetValue()
		case "annals_projection_lag_events":
			for _, m := range ms {
				if len(s.projectionLag) < maxProjectionSeries && len(m.GetLabel()) > 0 {
					s.projectionLag[m.GetLabel()[0].GetValue()] = uint64(m.GetGauge().GetValue())
				}
			}
		}
	}
	return s
}

// since is the sample of the interval from prev to s.
func (s snapshot) since(prev snapshot) Sample {
	dt := s.at.Sub(prev.at).Seconds()
	rate := func(cur, old float64) float64 {
		if dt <= 0 || cur < old {
			return 0
		}
		return (cur - old) / dt
	}
	appendDelta, syncDelta := delta(s.appendBuckets, prev.appendBuckets), delta(s.syncBuckets, prev.syncBuckets)
	return Sample{
		At:                  s.at.UTC(),
		AppendsPerSecond:    rate(s.appends, prev.appends),
		EventsWrittenPerSec: rate(s.written, prev.written),
		EventsReadPerSecond: rate(s.read, prev.read),
		AppendP50Seconds:    quantile(appendDelta, 0.5),
		AppendP99Seconds:    quantile(appendDelta, 0.99),
		SyncP50Seconds:      quantile(syncDelta, 0.5),
		SyncP99Seconds:      quantile(syncDelta, 0.99),
		SubscriptionLag:     s.subLag,
		ProjectionLag:       s.projectionLag,
		DiskUsedBytes:       s.disk,
	}
}

func sumCounters(ms []*dto.Metric) (n float64) {
	for _, m := range ms {
		n += m.GetCounter().GetValue()
	}
	return n
}

// buckets are a histogram's cumulative buckets, +Inf last.
func buckets(ms []*dto.Metric) []bucket {
	if len(ms) == 0 || ms[0].GetHistogram() == nil {
		return nil
	}
	h := ms[0].GetHistogram()
	out := make([]bucket, 0, len(h.GetBucket())+1)
	for _, b := range h.GetBucket() {
		out = append(out, bucket{b.GetUpperBound(), float64(b.GetCumulativeCount())})
	}
	return append(out, bucket{math.Inf(1), float64(h.GetSampleCount())})
}

// delta is cur minus prev, bucket by bucket (the observations between).
func delta(cur, prev []bucket) []bucket {
	if len(prev) != len(cur) {
		return cur
	}
	out := make([]bucket, len(cur))
	for i := range cur {
		out[i] = bucket{cur[i].upper, cur[i].count - prev[i].count}
	}
	return out
}

// quantile estimates the q-quantile of cumulative buckets as Prometheus'
// histogram_quantile does: linearly within the bucket it falls in; 0 with
// no observation.
func quantile(bs []bucket, q float64) float64 {
	if len(bs) < 2 || bs[len(bs)-1].count == 0 {
		return 0
	}
	rank := q * bs[len(bs)-1].count
	i := sort.Search(len(bs), func(i int) bool { return bs[i].count >= rank })
	if i == len(bs)-1 {
		return bs[len(bs)-2].upper // past the last finite bucket
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = bs[i-1].upper, bs[i-1].count
	}
	in := bs[i].count - below
	if in <= 0 {
		return bs[i].upper
	}
	return lower + (bs[i].upper-lower)*(rank-below)/in
}
