package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/annals/annals"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		bs   []bucket
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]bucket{{1, 0}, {inf, 0}}, 0.5, 0},
		{[]bucket{{1, 10}, {2, 10}, {inf, 10}}, 0.5, 0.5},  // all in the first: half way into it
		{[]bucket{{1, 0}, {2, 10}, {inf, 10}}, 0.5, 1.5},   // all in the second
		{[]bucket{{1, 5}, {2, 10}, {inf, 10}}, 0.99, 1.98}, // the top of the second
		{[]bucket{{1, 0}, {2, 0}, {inf, 10}}, 0.5, 2},      // past the last finite bound
	} {
		if got := quantile(tc.bs, tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.bs, tc.q, got, tc.want)
		}
	}
}

// TestHistory: a sample holds the rates and quantiles of the interval
// since the one before, and the history keeps the last HistorySamples.
func TestHistory(t *testing.T) {
	m := New()
	h := NewHistory(m, 0)
	start := time.Unix(1000, 0)
	h.sample(start)
	for range 10 {
		m.appends.WithLabelValues(OutcomeOK).Inc()
		m.appendEvents.Inc()
		m.appendTime.Observe(0.002)
	}
	m.ObserveGroupCommit(annals.GroupCommit{Writes: 10, Events: 10, Sync: time.Millisecond})
	h.sample(start.Add(2 * time.Second))
	s := h.Samples()
	if len(s) != 1 {
		t.Fatalf("%d samples, want 1", len(s))
	}
	if s[0].AppendsPerSecond != 5 || s[0].EventsWrittenPerSec != 5 {
		t.Errorf("rates %+v, want 5 appends/s and 5 events/s", s[0])
	}
	if p := s[0].AppendP50Seconds; p <= 0.001 || p > 0.0035 {
		t.Errorf("append p50 %v, want about 2 ms", p)
	}
	h.sample(start.Add(4 * time.Second))
	if s := h.Samples(); s[1].AppendsPerSecond != 0 || s[1].AppendP99Seconds != 0 {
		t.Errorf("an idle interval: %+v, want no appends and no latency", s[1])
	}
	for i := range HistorySamples + 5 {
		h.sample(start.Add(time.Duration(6+i) * time.Second))
	}
	if n := len(h.Samples()); n != HistorySamples {
		t.Errorf("%d samples kept, want %d", n, HistorySamples)
	}
}
