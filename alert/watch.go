package alert

import (
	"context"
	"time"
)

// Watch takes a snapshot from source at once and then every interval
// (DefaultInterval if not positive), and notifies n of the alerts Diff
// finds against the previous one. Each snapshot gets the interval, at
// most MaxSnapshotTimeout; a failing source is logged and its turn
// skipped, the previous snapshot kept. Watch returns when ctx is done; it
// does not close n (which must not be nil).
func Watch(ctx context.Context, interval time.Duration, source func(context.Context) (Snapshot, error), rules Rules, n *Notifier) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	timeout := min(interval, MaxSnapshotTimeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var prev Snapshot
	for {
		if cur, ok := take(ctx, timeout, source, n); ok {
			for _, a := range Diff(prev, cur, rules) {
				n.Notify(a)
			}
			prev = cur
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func take(parent context.Context, timeout time.Duration, source func(context.Context) (Snapshot, error), n *Notifier) (Snapshot, bool) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	s, err := source(ctx)
	if err != nil {
		if parent.Err() == nil { // not worth a line when shutting down
			n.log.Warn("alert: snapshot failed; skipped", "err", err, "timeout", timeout)
		}
		return Snapshot{}, false
	}
	if s.At.IsZero() {
		s.At = time.Now().UTC()
	}
	return s, true
}
