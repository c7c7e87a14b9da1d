package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/alert"
	"github.com/annals/annals/console"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/metrics"
	"github.com/annals/annals/persistent"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/server"
	"github.com/annals/annals/tracing"
)

// instrument wraps raw in m's measures (if m is set) and in traces (if the
// OTEL_EXPORTER_OTLP_* variables ask for them), and sets opts to match;
// stopTraces flushes the last spans.
func instrument(ctx context.Context, raw annals.Store, m *metrics.Metrics, opts *server.Options, logger *slog.Logger) (store annals.Store, stopTraces func(), err error) {
	store, stopTraces = raw, func() {}
	if m != nil {
		store = m.Store(raw)
		opts.Calls, opts.Metrics = m, m.Handler()
		m.WatchDisk(diskUsage(raw))
	}
	tp, err := tracerProvider(ctx)
	if err != nil || tp == nil {
		return store, stopTraces, err
	}
	logger.Info("tracing: exporting spans over OTLP",
		"endpoint", cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))
	opts.TracerProvider = tp
	return tracing.Store(store, tp), func() {
		if err := shutdownTraces(tp); err != nil {
			logger.Warn("tracing: flushing the last spans", "err", err)
		}
	}, nil
}

// withConsole opens the persistent subscription groups for the server
// and the console to share, and sets opts.Console, if cfg asks for the
// console; the history of m's series samples until ctx is done.
func withConsole(ctx context.Context, cfg serveConfig, store annals.Store, m *metrics.Metrics, alerts *alert.Notifier, opts *server.Options) error {
	if !cfg.console {
		return nil
	}
	groups, err := persistent.Open(ctx, store, persistent.Options{Logger: cfg.logger})
	if err != nil {
		return fmt.Errorf("loading the persistent subscription groups: %w", err)
	}
	opts.Persistent = groups
	var history *metrics.History
	if m != nil {
		history = metrics.NewHistory(m, 0)
		go history.Run(ctx)
	}
	opts.Console = console.New(console.Options{
		Store: store, Groups: groups, History: history, Log: cfg.log, Alerts: alerts, Logger: cfg.logger,
		Info: console.Info{Version: version, Store: opts.Info.Store, Started: time.Now(), Limits: opts.Limits},
	})
	return nil
}

// storeKind names the store annals serve runs on, for /info.
func storeKind(e *env) string {
	if e.postgres != "" {
		return "postgres"
	}
	return "embedded"
}

// diskUsage asks store for the space it takes.
func diskUsage(store annals.Store) func(context.Context) (metrics.Disk, error) {
	return func(ctx context.Context) (metrics.Disk, error) {
		switch s := store.(type) {
		case *embedded.Store:
			used, free, err := s.DiskUsage()
			return metrics.Disk{UsedBytes: int64(used), FreeBytes: int64(free)}, err
		case *postgres.Store:
			used, err := s.DiskUsage(ctx)
			return metrics.Disk{UsedBytes: used, FreeBytes: -1}, err
		}
		return metrics.Disk{FreeBytes: -1}, nil
	}
}

// watchServed shows the server's persistent subscription groups and
// projections in m.
func watchServed(m *metrics.Metrics, srv *server.Server, projections server.Projections) {
	m.WatchGroups(func() ([]metrics.Group, error) {
		infos, err := srv.Groups()
		groups := make([]metrics.Group, len(infos))
		for i, g := range infos {
			groups[i] = metrics.Group{
				Stream: g.Stream, Name: g.Group, Consumers: len(g.Connections),
				InFlight: g.InFlight, Buffered: g.Buffered, Parked: g.Parked, Delivered: g.Delivered,
			}
		}
		return groups, err
	})
	if projections == nil {
		return
	}
	m.WatchProjections(func(ctx context.Context) ([]metrics.Projection, error) {
		statuses, err := projections.Statuses(ctx)
		out := make([]metrics.Projection, len(statuses))
		for i, st := range statuses {
			out[i] = metrics.Projection{
				Name: st.Name, State: st.State, Position: uint64(st.Position), Lag: st.Lag,
				Parked: st.Parked, EventsPerSecond: st.EventsPerSecond, LastErrorAt: st.LastErrorAt,
			}
		}
		return out, err
	})
}
