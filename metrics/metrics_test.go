package metrics_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/metrics"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// served is an embedded store measured by m, served on a loopback port.
type served struct {
	m      *metrics.Metrics
	addr   string
	client *kurrentdb.Client
}

func serve(t *testing.T) *served {
	t.Helper()
	m := metrics.New()
	quiet := slog.New(slog.DiscardHandler)
	raw, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet, OnGroupCommit: m.ObserveGroupCommit,
		Limits: annals.Limits{AllowSystemStreams: true}})
	if err != nil {
		t.Fatal(err)
	}
	m.WatchDisk(func(context.Context) (metrics.Disk, error) {
		used, free, err := raw.DiskUsage()
		return metrics.Disk{UsedBytes: int64(used), FreeBytes: int64(free)}, err
	})
	srv, err := server.New(m.Store(raw), server.Options{Logger: quiet, Calls: m, Metrics: m.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	cfg, err := kurrentdb.ParseConnectionString(fmt.Sprintf("kurrentdb://%s?tls=false", l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		srv.Shutdown(context.Background())
		raw.Close()
	})
	return &served{m: m, addr: l.Addr().String(), client: client}
}

// scrape fetches /metrics and parses it as Prometheus does.
func (s *served) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs); -1 if there is none.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := families[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestCountsUnderLoad scrapes /metrics while writers append through the
// official client: the counters never go back, and once the writers are
// done they hold exactly what was appended.
func TestCountsUnderLoad(t *testing.T) {
	s := serve(t)
	const writers, appends, eventsPerAppend = 8, 40, 2
	ctx := context.Background()

	sub, err := s.client.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	go func() {
		for sub.Recv().SubscriptionDropped == nil {
		}
	}()

	done := make(chan struct{})
	var scrapes sync.WaitGroup
	scrapes.Add(1)
	go func() {
		defer scrapes.Done()
		last := 0.0
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			ok := value(s.scrape(t), "annals_appends_total", "outcome", "ok")
			if ok < last {
				t.Errorf("annals_appends_total{outcome=ok} went from %v to %v", last, ok)
			}
			last = ok
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("load-%d", w)
			for range appends {
				events := make([]kurrentdb.EventData, eventsPerAppend)
				for i := range events {
					events[i] = kurrentdb.EventData{EventType: "Tick", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{"n":1}`)}
				}
				if _, err := s.client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{}, events...); err != nil {
					t.Error(err)
					return
				}
			}
			// One append that expects no stream: refused, counted as such.
			_, err := s.client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}},
				kurrentdb.EventData{EventType: "Tick", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)})
			if err == nil {
				t.Error("an append expecting no stream to an existing one succeeded")
			}
		})
	}
	wg.Wait()
	close(done)
	scrapes.Wait()

	total := float64(writers * appends * eventsPerAppend)
	f := s.scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"annals_appends_total", []string{"outcome", "ok"}, writers * appends},
		{"annals_appends_total", []string{"outcome", "wrong_expected"}, writers},
		{"annals_appends_total", []string{"outcome", "invalid"}, 0},
		{"annals_appended_events_total", nil, total},
		{"annals_append_duration_seconds", nil, writers*appends + writers},
		{"annals_grpc_calls_total", []string{"method", "/event_store.client.streams.Streams/Append"}, writers*appends + writers},
		{"annals_head_position", nil, total},
		{"annals_subscriptions", []string{"kind", "all"}, 1},
	} {
		if got := value(f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every event was written by a group commit, each of which synced.
	if got := sumOf(f, "annals_group_commit_events"); got != total {
		t.Errorf("annals_group_commit_events_sum = %v, want %v", got, total)
	}
	if n, groups := value(f, "annals_store_sync_duration_seconds"), value(f, "annals_group_commit_events"); n != groups || n < 1 {
		t.Errorf("%v syncs observed for %v group commits", n, groups)
	}
	// The subscription catches up: its lag comes down to 0.
	for deadline := time.Now().Add(10 * time.Second); value(f, "annals_subscription_max_lag_events") != 0; f = s.scrape(t) {
		if time.Now().After(deadline) {
			t.Fatalf("the $all subscription's lag stays at %v", value(f, "annals_subscription_max_lag_events"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if value(f, "go_goroutines") <= 0 || value(f, "annals_store_used_bytes") <= 0 {
		t.Error("the Go runtime's or the disk's series are missing")
	}
}

func sumOf(families map[string]*dto.MetricFamily, name string) float64 {
	f, ok := families[name]
	if !ok || len(f.GetMetric()) == 0 || f.GetMetric()[0].Histogram == nil {
		return -1
	}
	return f.GetMetric()[0].Histogram.GetSampleSum()
}

// TestMultiAppendCounted: a multi-stream append through the official
// client's AppendRecords counts as one append of all its records.
func TestMultiAppendCounted(t *testing.T) {
	s := serve(t)
	ctx := context.Background()
	rec := func(stream string) kurrentdb.AppendRecord {
		return kurrentdb.AppendRecord{Stream: stream, Record: kurrentdb.EventData{EventID: uuid.New(), EventType: "E", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}}
	}
	if _, err := s.client.AppendRecords(ctx, []kurrentdb.AppendRecord{rec("a"), rec("b"), rec("a")}); err != nil {
		t.Fatal(err)
	}
	f := s.scrape(t)
	if ok, events := value(f, "annals_appends_total", "outcome", "ok"), value(f, "annals_appended_events_total"); ok != 1 || events != 3 {
		t.Fatalf("appends ok %v, events %v; want 1 and 3", ok, events)
	}
}
