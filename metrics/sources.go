package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Group is a persistent subscription group as its series show it.
type Group struct {
	Stream, Name string
	Consumers    int
	// InFlight: with consumers; Buffered: read, not yet delivered;
	// Parked: parked, not yet replayed.
	InFlight, Buffered int
	Parked             int64
	Delivered          uint64
}

// Projection is a projection as its series show it.
type Projection struct {
	Name, State     string
	Position, Lag   uint64
	Parked          uint64
	EventsPerSecond float64
	LastErrorAt     time.Time // zero if it has seen no error
}

// Disk is the space a store takes and what is left on its filesystem
// (FreeBytes -1: unknown, as for a database on another machine).
type Disk struct {
	UsedBytes, FreeBytes int64
}

// WatchGroups shows the groups list returns, asked at each scrape.
func (m *Metrics) WatchGroups(list func() ([]Group, error)) {
	m.reg.MustRegister(&scraped{descs: groupDescs, collect: func(_ context.Context, ch chan<- prometheus.Metric) error {
		groups, err := list()
		for _, g := range groups {
			labels := []string{g.Stream, g.Name}
			ch <- gauge(groupDescs[0], float64(g.Consumers), labels...)
			ch <- gauge(groupDescs[1], float64(g.InFlight), labels...)
			ch <- gauge(groupDescs[2], float64(g.Buffered), labels...)
			ch <- gauge(groupDescs[3], float64(g.Parked), labels...)
			ch <- prometheus.MustNewConstMetric(groupDescs[4], prometheus.CounterValue, float64(g.Delivered), labels...)
		}
		return err
	}})
}

var groupDescs = []*prometheus.Desc{
	desc("annals_persistent_consumers", "Consumers connected to a persistent subscription group.", "stream", "group"),
	desc("annals_persistent_in_flight", "Events a group has handed to consumers and not yet seen acknowledged.", "stream", "group"),
	desc("annals_persistent_buffered", "Events a group has read and not yet delivered.", "stream", "group"),
	desc("annals_persistent_parked", "Events a group has parked and not replayed.", "stream", "group"),
	desc("annals_persistent_delivered_total", "Events a group has delivered since it loaded.", "stream", "group"),
}

// WatchProjections shows the projections list returns, asked at each
// scrape with a context that ends after ScrapeTimeout.
func (m *Metrics) WatchProjections(list func(context.Context) ([]Projection, error)) {
	m.reg.MustRegister(&scraped{descs: projectionDescs, collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
		ps, err := list(ctx)
		for _, p := range ps {
			ch <- gauge(projectionDescs[0], float64(p.Position), p.Name)
			ch <- gauge(projectionDescs[1], float64(p.Lag), p.Name)
			ch <- gauge(projectionDescs[2], 1, p.Name, p.State)
			ch <- gauge(projectionDescs[3], float64(p.Parked), p.Name)
			ch <- gauge(projectionDescs[4], p.EventsPerSecond, p.Name)
			if !p.LastErrorAt.IsZero() {
				ch <- gauge(projectionDescs[5], float64(p.LastErrorAt.UnixMilli())/1000, p.Name)
			}
		}
		return err
	}})
}

var projectionDescs = []*prometheus.Desc{
	desc("annals_projection_position", "A projection's checkpoint: the last position it has dealt with.", "projection"),
	desc("annals_projection_lag_events", "The store's head minus a projection's checkpoint.", "projection"),
	desc("annals_projection_state", "1 for a projection's current state (running, rebuilding, paused, stopped, standby, failed).", "projection", "state"),
	desc("annals_projection_parked", "Events a projection has parked since its last reset.", "projection"),
	desc("annals_projection_events_per_second", "A projection's recent rate of applied events.", "projection"),
	desc("annals_projection_last_error_timestamp_seconds", "When a projection last saw an error (Unix time).", "projection"),
}

// WatchDisk shows the disk use usage returns, asked at each scrape.
func (m *Metrics) WatchDisk(usage func(context.Context) (Disk, error)) {
	m.reg.MustRegister(&scraped{descs: diskDescs, collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
		d, err := usage(ctx)
		if err != nil {
			return err
		}
		ch <- gauge(diskDescs[0], float64(d.UsedBytes))
		if d.FreeBytes >= 0 {
			ch <- gauge(diskDescs[1], float64(d.FreeBytes))
		}
		return nil
	}})
}

var diskDescs = []*prometheus.Desc{
	desc("annals_store_used_bytes", "Bytes the store takes: its directory (embedded), its database (postgres)."),
	desc("annals_store_free_bytes", "Bytes free on the store's filesystem (embedded)."),
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// scraped is a collector whose series are asked for at each scrape. A
// source that fails shows what it returned and an invalid metric with its
// error, which the handler logs and leaves out (promhttp.ContinueOnError).
type scraped struct {
	descs   []*prometheus.Desc
	collect func(context.Context, chan<- prometheus.Metric) error
}

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	if err := s.collect(ctx, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(s.descs[0], err)
	}
}
