package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/alert"
	"github.com/annals/annals/metrics"
	"github.com/annals/annals/process"
	"github.com/annals/annals/server"
)

// webhooks is the repeatable --alert-webhook.
type webhooks []string

func (w *webhooks) String() string { return "" }
func (w *webhooks) Set(s string) error {
	*w = append(*w, s)
	return nil
}

// alertFlags are annals serve's alert flags (docs/alerts.md).
type alertFlags struct {
	webhooks webhooks
	lag      *uint64
	diskFree *int64
	interval *time.Duration
}

func addAlertFlags(fs *flag.FlagSet) *alertFlags {
	f := &alertFlags{
		lag:      fs.Uint64("alert-lag", alert.DefaultLagEvents, "report a projection more than `N` events behind the head"),
		diskFree: fs.Int64("alert-disk-free", alert.DefaultDiskFreeBytes, "report less than `BYTES` free on the store's filesystem"),
		interval: fs.Duration("alert-interval", alert.DefaultInterval, "how often the alerts' sources are looked at (`duration`)"),
	}
	fs.Var(&f.webhooks, "alert-webhook", "POST each alert as JSON to `URL` (repeatable; docs/alerts.md); alerts are logged either way")
	return f
}

// notifier makes the notifier of the flags: with no webhook, alerts are
// logged (and shown in the console's error log) all the same.
func (f *alertFlags) notifier(cfg serveConfig) (*alert.Notifier, error) {
	n, err := alert.New(alert.Options{URLs: f.webhooks, Logger: cfg.logger})
	if err != nil {
		return nil, usagef("--alert-webhook: %v", err)
	}
	return n, nil
}

// watch reports the server's projections, groups and disk to n until ctx
// is done.
func (f *alertFlags) watch(ctx context.Context, n *alert.Notifier, srv *server.Server, projections server.Projections,
	disk func(context.Context) (metrics.Disk, error), store annals.Store) {
	source := func(ctx context.Context) (alert.Snapshot, error) {
		var snap alert.Snapshot
		if projections != nil {
			statuses, err := projections.Statuses(ctx)
			if statuses == nil && err != nil {
				return snap, err
			}
			for _, st := range statuses {
				snap.Projections = append(snap.Projections, alert.Projection{
					Name: st.Name, State: st.State, Position: uint64(st.Position), Lag: st.Lag, Parked: st.Parked, LastError: st.LastError,
				})
			}
		}
		groups, err := srv.Groups()
		if err != nil {
			return snap, err
		}
		for _, g := range groups {
			snap.Groups = append(snap.Groups, alert.Group{Stream: g.Stream, Group: g.Group, Parked: g.Parked})
		}
		if d, err := disk(ctx); err == nil && d.FreeBytes >= 0 && d.UsedBytes > 0 {
			snap.Disk = &alert.Disk{UsedBytes: d.UsedBytes, FreeBytes: d.FreeBytes}
		}
		snap.Processes, err = processFailures(ctx, store)
		return snap, err
	}
	alert.Watch(ctx, *f.interval, source, alert.Rules{LagEvents: *f.lag, DiskFreeBytes: *f.diskFree}, n)
}

// processFailures are the failed instances of the process managers that
// ran on store (none if it cannot list its streams).
func processFailures(ctx context.Context, store annals.Store) ([]alert.Process, error) {
	names, err := process.Managers(ctx, store)
	if errors.Is(err, annals.ErrInvalidInput) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []alert.Process
	for _, name := range names {
		rep, err := process.Inspect(ctx, store, name)
		if err != nil {
			return nil, err
		}
		p := alert.Process{Manager: name}
		for _, f := range rep.Failed {
			p.Failed = append(p.Failed, alert.FailedInstance{ID: f.ID, Error: f.Error})
		}
		out = append(out, p)
	}
	return out, nil
}
