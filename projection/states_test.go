package projection_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
)

// logBuffer is a slog destination the tests read back.
type logBuffer struct{ teststores.SyncBuffer }

// records are the JSON records logged so far with message msg.
func (b *logBuffer) records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, nil))
}

// panel serves pr's controls over HTTP, as a server mounts them.
type panel struct {
	t   testing.TB
	url string
}

func newPanel(t testing.TB, c projection.Controller) panel {
	t.Helper()
	reg := projection.NewRegistry()
	if err := reg.Add(c); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg.Handler())
	t.Cleanup(srv.Close)
	return panel{t: t, url: srv.URL + projection.APIPrefix + "/" + c.Name()}
}

// post asks for action and returns the answer's code and error text.
func (p panel) post(action string) (int, string) {
	p.t.Helper()
	resp, err := http.Post(p.url+"/"+action, "", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body projection.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, body.Error
}

// refused checks that action answers 409 with a reason holding want, and
// that it changed nothing of pr's state.
func refused[M any](t testing.TB, p panel, pr *projection.Projector[M], action, want string) {
	t.Helper()
	before := state(t, pr).State
	code, msg := p.post(action)
	if code != http.StatusConflict || !strings.Contains(msg, want) {
		t.Errorf("%s in state %s: %d %q, want 409 with %q", action, before, code, msg, want)
	}
	if after := state(t, pr).State; after != before {
		t.Errorf("%s in state %s: refused, but the state is now %s", action, before, after)
	}
}

// breakable is kvProjection failing at once (no retries, Stop) on the
// event at position bad while broken holds.
func breakable(name string, bad annals.Position, broken *atomic.Bool) projection.Projection[projection.KV] {
	p := kvProjection(name, nil)
	p.Policy = projection.ErrorPolicy{MaxRetries: -1}
	p.Handle = func(ctx context.Context, kv projection.KV, e annals.Event) error {
		if e.Position == bad && broken.Load() {
			return errBoom
		}
		return countKV(ctx, kv, e)
	}
	return p
}

// failedProjector starts a breakable projection over 100 events, failing
// at 40, and waits for it to fail.
func failedProjector(t *testing.T, logs *logBuffer, broken *atomic.Bool) (annals.Store, *projection.Memory, *projection.Projector[projection.KV]) {
	t.Helper()
	store := newMemoryStore(t)
	appendEvents(t, store, 100, 0)
	target := projection.NewMemory()
	broken.Store(true)
	pr := started(t, store, target, breakable("orders", 40, broken), projection.Options{Logger: logs.logger()})
	waitFor(t, "the projection to fail", func() bool { return state(t, pr).State == projection.Failed })
	return store, target, pr
}

// waitHead waits, on the projector's commits, until it has applied the
// whole log.
func waitHead[M any](t testing.TB, store annals.Store, pr *projection.Projector[M]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := pr.WaitFor(ctx, head(t, store)); err != nil {
		t.Fatalf("waiting for %s to apply the log: %v (%+v)", pr.Name(), err, state(t, pr))
	}
}

// caughtUpOver starts projection "orders" over n events and waits until
// it has applied them.
func caughtUpOver(t *testing.T, n int) (annals.Store, *projection.Memory, *projection.Projector[projection.KV]) {
	t.Helper()
	store := newMemoryStore(t)
	appendEvents(t, store, n, 0)
	target := projection.NewMemory()
	pr := started(t, store, target, kvProjection("orders", nil), projection.Options{})
	waitHead(t, store, pr)
	return store, target, pr
}

// A failed projection is logged when it fails; pause and rebuild refuse
// it with the reason; resume retries it from its checkpoint.
func TestFailedResume(t *testing.T) {
	var logs logBuffer
	var broken atomic.Bool
	store, target, pr := failedProjector(t, &logs, &broken)

	// In the log at once, not when the projector is stopped.
	failures := logs.records(t, "projection failed: resume retries it, reset replays it from the start")
	if len(failures) != 1 {
		t.Fatalf("%d failure records in the log, want 1", len(failures))
	}
	if r := failures[0]; r["level"] != "ERROR" || r["projection"] != "orders" || r["position"] != float64(39) || !strings.Contains(r["err"].(string), "boom") {
		t.Errorf("failure record %v: want level ERROR, projection orders, position 39, err boom", r)
	}

	p := newPanel(t, pr)
	refused(t, p, pr, projection.ActionPause, "failed")
	refused(t, p, pr, projection.ActionRebuild, "failed")
	if pr.Position() != 39 {
		t.Fatalf("position %d, want 39", pr.Position())
	}

	// Still broken: the retry fails again, and is logged again.
	if code, msg := p.post(projection.ActionResume); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, msg)
	}
	waitFor(t, "the retry to fail", func() bool {
		return len(logs.records(t, "projection failed: resume retries it, reset replays it from the start")) == 2
	})
	waitFor(t, "state failed", func() bool { return state(t, pr).State == projection.Failed })

	broken.Store(false)
	if code, msg := p.post(projection.ActionResume); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, msg)
	}
	waitHead(t, store, pr)
	if st := state(t, pr); st.State != projection.Running {
		t.Fatalf("after resume: %+v", st)
	}
	sameModel(t, "resumed", dumpMemory(target, "orders"), fold(t, store, nil))
	if err := pr.Stop(); err != nil {
		t.Fatalf("Stop after the retry succeeded: %v", err)
	}
}

// Reset of a failed projection replays the log from zero at once.
func TestFailedReset(t *testing.T) {
	var logs logBuffer
	var broken atomic.Bool
	store, target, pr := failedProjector(t, &logs, &broken)
	broken.Store(false)
	if code, msg := newPanel(t, pr).post(projection.ActionReset); code != http.StatusOK {
		t.Fatalf("reset: %d %s", code, msg)
	}
	waitHead(t, store, pr)
	if st := state(t, pr); st.State == projection.Failed {
		t.Fatalf("after reset: %+v", st)
	}
	sameModel(t, "reset", dumpMemory(target, "orders"), fold(t, store, nil))
}

// A projector that does not run refuses pause, resume and rebuild; reset
// and replay-parked work on its stored checkpoint.
func TestStoppedActions(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 10, 0)
	pr, err := projection.New(store, projection.NewMemory(), kvProjection("orders", nil), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := newPanel(t, pr)
	for _, action := range []string{projection.ActionPause, projection.ActionResume, projection.ActionRebuild} {
		refused(t, p, pr, action, "not running")
	}
	for _, action := range []string{projection.ActionReset, projection.ActionReplayParked} {
		if code, msg := p.post(action); code != http.StatusOK {
			t.Errorf("%s of a stopped projector: %d %s", action, code, msg)
		}
	}
	// Nothing left paused for when it starts.
	if err := pr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer pr.Stop()
	waitHead(t, store, pr)
}

// A standby refuses every action: the instance holding the lease is the
// one to act on.
func TestStandbyActions(t *testing.T) {
	store, target, _ := caughtUpOver(t, 10)
	second := started(t, store, target, kvProjection("orders", nil), projection.Options{})
	waitFor(t, "the second instance on standby", func() bool { return state(t, second).State == projection.Standby })
	p := newPanel(t, second)
	for _, action := range []string{projection.ActionPause, projection.ActionResume, projection.ActionReset,
		projection.ActionRebuild, projection.ActionReplayParked} {
		refused(t, p, second, action, "standby")
	}
}

// Pause and resume are idempotent; a reset of a paused projector waits
// for resume to replay, and meanwhile a rebuild is refused.
func TestPausedActions(t *testing.T) {
	store, target, pr := caughtUpOver(t, 50)
	p := newPanel(t, pr)
	for _, action := range []string{projection.ActionResume, projection.ActionPause, projection.ActionPause} {
		if code, msg := p.post(action); code != http.StatusOK {
			t.Fatalf("%s: %d %s", action, code, msg)
		}
	}
	if code, msg := p.post(projection.ActionReset); code != http.StatusOK {
		t.Fatalf("reset: %d %s", code, msg)
	}
	if st := state(t, pr); st.State != projection.Paused || st.Position != 0 {
		t.Fatalf("reset while paused: %+v", st)
	}
	refused(t, p, pr, projection.ActionRebuild, "replaying after a reset")
	if code, msg := p.post(projection.ActionResume); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, msg)
	}
	waitHead(t, store, pr)
	sameModel(t, "reset while paused", dumpMemory(target, "orders"), fold(t, store, nil))
}
