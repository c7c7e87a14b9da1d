package projection_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/projection"
)

// The read model of the tests: per stream, how many events were applied
// and the sum of their positions. Applying an event twice or skipping one
// changes both, so comparing two models compares what was applied.

// countKV applies e to a KV read model.
func countKV(ctx context.Context, kv projection.KV, e annals.Event) error {
	key := []byte("s/" + e.Stream)
	v, _, err := kv.Get(key)
	if err != nil {
		return err
	}
	n, sum := parseCount(string(v))
	return kv.Set(key, fmt.Appendf(nil, "%d:%d", n+1, sum+uint64(e.Position)))
}

func resetKV(ctx context.Context, kv projection.KV) error { return kv.DeletePrefix(nil) }

func parseCount(v string) (n, sum uint64) {
	if v == "" {
		return 0, 0
	}
	a, b, _ := strings.Cut(v, ":")
	n, _ = strconv.ParseUint(a, 10, 64)
	sum, _ = strconv.ParseUint(b, 10, 64)
	return n, sum
}

// fold computes the model straight from the store: what one clean run of
// the projection must produce.
func fold(t testing.TB, store annals.Store, f *annals.Filter) map[string]string {
	t.Helper()
	counts := map[string][2]uint64{}
	for e, err := range store.ReadAll(context.Background(), annals.ReadAllOptions{Filter: f}) {
		if err != nil {
			t.Fatal(err)
		}
		c := counts[e.Stream]
		counts[e.Stream] = [2]uint64{c[0] + 1, c[1] + uint64(e.Position)}
	}
	out := map[string]string{}
	for s, c := range counts {
		out[s] = fmt.Sprintf("%d:%d", c[0], c[1])
	}
	return out
}

func dumpMemory(m *projection.Memory, name string) map[string]string {
	out := map[string]string{}
	m.Scan(name, []byte("s/"), func(k, v []byte) bool {
		out[strings.TrimPrefix(string(k), "s/")] = string(v)
		return true
	})
	return out
}

func dumpPebble(t testing.TB, p *projection.Pebble, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := p.Scan(name, []byte("s/"), func(k, v []byte) bool {
		out[strings.TrimPrefix(string(k), "s/")] = string(v)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameModel(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		n := 0
		for k, w := range want {
			if got[k] != w && n < 5 {
				t.Errorf("%s: stream %s: got %q, want %q", what, k, got[k], w)
				n++
			}
		}
		t.Fatalf("%s: read models differ (%d streams, want %d)", what, len(got), len(want))
	}
}

// appendEvents appends n events spread over streams of two categories.
func appendEvents(t testing.TB, store annals.Store, n, salt int) {
	t.Helper()
	if err := appendSome(store, n, salt); err != nil {
		t.Fatal(err)
	}
}

// appendSome is appendEvents for other goroutines than the test's.
func appendSome(store annals.Store, n, salt int) error {
	ctx := context.Background()
	for i := range n {
		cat := "order"
		if i%3 == 0 {
			cat = "cart"
		}
		stream := fmt.Sprintf("%s-%d", cat, (i*7+salt)%23)
		typ := "Added"
		if i%5 == 0 {
			typ = "Removed"
		}
		if _, err := store.Append(ctx, stream, annals.Any, annals.EventData{Type: typ, Data: []byte(`{}`)}); err != nil {
			return err
		}
	}
	return nil
}

func head(t testing.TB, store annals.Store) annals.Position {
	t.Helper()
	var h annals.Position
	for e, err := range store.ReadAll(context.Background(), annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		h = e.Position
	}
	return h
}

// hangGuard bounds the tests' waits on conditions: far above any normal
// run (the slowest wait, a rebuild under load, takes seconds), only there
// so that a broken projector fails its test instead of hanging it. No
// verdict depends on how fast the machine is.
const hangGuard = 5 * time.Minute

// waitFor polls cond until it holds, failing the test after hangGuard.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// caughtUp waits until p's checkpoint reaches the store's head (for a
// filtered projection, the last matching event or checkpoint: give want).
func caughtUp[M any](t testing.TB, p *projection.Projector[M], want annals.Position) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to reach position %d", p.Name(), want), func() bool { return p.Position() >= want })
}

func newMemoryStore(t testing.TB) annals.Store {
	s := memory.New(memory.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

func fmtCount(n, sum uint64) string { return fmt.Sprintf("%d:%d", n, sum) }

// started makes a projector of p and starts it; it is stopped when the
// test ends, if the test has not stopped it.
func started[M any](t testing.TB, store annals.Store, target projection.Target[M], p projection.Projection[M], opts projection.Options) *projection.Projector[M] {
	t.Helper()
	pr, err := projection.New(store, target, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Stop() })
	return pr
}
