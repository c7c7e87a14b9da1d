package alert

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatch plays a script of snapshots: a lagging projection (one
// alert), a failing source, the same lag again (nothing: the snapshot
// before the failure is kept), then the projection failing.
func TestWatch(t *testing.T) {
	received := make(chan Alert, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			t.Error(err)
		}
		received <- a
	}))
	defer srv.Close()
	logged := &counting{msg: "alert"}
	opts := fast(srv.URL)
	opts.Logger = slog.New(logged)
	n := newNotifier(t, opts)

	behind := snap(proj("p", "running", DefaultLagEvents+1, 0))
	script := []func() (Snapshot, error){
		func() (Snapshot, error) { return behind, nil },
		func() (Snapshot, error) { return Snapshot{}, errors.New("store closed") },
		func() (Snapshot, error) { return behind, nil },
		func() (Snapshot, error) { return snap(proj("p", "failed", DefaultLagEvents+1, 0)), nil },
	}
	var calls atomic.Int32
	source := func(ctx context.Context) (Snapshot, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the snapshot has no timeout")
		}
		i := int(calls.Add(1)) - 1
		return script[min(i, len(script)-1)]()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Watch(ctx, time.Millisecond, source, Rules{}, n); close(done) }()

	for _, want := range []Kind{ProjectionLag, ProjectionFailed} {
		select {
		case a := <-received:
			if a.Kind != want || a.Subject != "p" || a.At.IsZero() {
				t.Fatalf("got %+v, want a %s of p with a time", a, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", want)
		}
	}
	waitFor(t, "more snapshots", func() bool { return calls.Load() > int32(len(script))+2 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return when its context ended")
	}
	if k := logged.n.Load(); k != 2 {
		t.Errorf("%d alerts notified, want 2", k)
	}
}

// counting is a slog handler that counts the records with message msg.
type counting struct {
	msg string
	n   atomic.Int32
}

func (c *counting) Enabled(context.Context, slog.Level) bool { return true }
func (c *counting) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *counting) WithGroup(string) slog.Handler            { return c }
func (c *counting) Handle(_ context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.n.Add(1)
	}
	return nil
}
