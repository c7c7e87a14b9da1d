package persistent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/persistent"
	"github.com/google/uuid"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStore() annals.Store {
	return memory.New(memory.Options{Limits: annals.Limits{AllowSystemStreams: true}})
}

func open(t *testing.T, store annals.Store) *persistent.Manager {
	t.Helper()
	m, err := persistent.Open(context.Background(), store, persistent.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func appendN(t *testing.T, store annals.Store, stream string, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	var evs []annals.EventData
	for i := range n {
		id := uuid.New()
		ids = append(ids, id)
		evs = append(evs, annals.EventData{ID: id, Type: "Booked", Data: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if _, err := store.Append(context.Background(), stream, annals.Any, evs...); err != nil {
		t.Fatal(err)
	}
	return ids
}

func settings() persistent.Settings {
	s := persistent.DefaultSettings()
	s.StartFrom = annals.Start
	s.CheckpointLowerBound, s.CheckpointUpperBound, s.CheckpointAfterMs = 1, 1, 0
	return s
}

// hangGuard bounds the tests' waits for a delivery or a condition: far
// above any normal run, only there so that a broken manager fails its
// test instead of hanging it. No verdict depends on the machine's speed.
const hangGuard = 5 * time.Minute

func next(t *testing.T, c *persistent.Consumer) persistent.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	d, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// noneFor asserts that nothing is delivered for a while: an absence
// check, which a slow machine can make miss a fault, never fail.
func noneFor(t *testing.T, c *persistent.Consumer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if got, err := c.Next(ctx); err == nil {
		t.Fatalf("unexpected delivery of revision %d", got.Event.Revision)
	}
}

func TestManagerRefusesBadInput(t *testing.T) {
	m := open(t, newStore())
	ctx := context.Background()
	bad := settings()
	bad.Strategy = "Random"
	cases := []persistent.Config{
		{Stream: "", Group: "g", Settings: settings()},
		{Stream: "s", Group: "", Settings: settings()},
		{Stream: "s", Group: "g", Settings: bad},
		{Stream: "s", Group: "g", Filter: annals.StreamPrefixFilter("a"), Settings: settings()},
	}
	for _, c := range cases {
		if err := m.Create(ctx, c); !errors.Is(err, annals.ErrInvalidInput) {
			t.Errorf("%+v: got %v, want invalid input", c, err)
		}
	}
	if err := m.Create(ctx, persistent.Config{Stream: "s", Group: "g", Settings: settings()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, persistent.Config{Stream: "s", Group: "g", Settings: settings()}); !errors.Is(err, persistent.ErrGroupExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := m.Connect("s", "nope", persistent.ConnectOptions{}); !errors.Is(err, persistent.ErrGroupNotFound) {
		t.Fatalf("connect to a missing group: %v", err)
	}
	if err := m.Delete(ctx, "s", "nope"); !errors.Is(err, persistent.ErrGroupNotFound) {
		t.Fatalf("delete a missing group: %v", err)
	}
	if _, err := m.Connect("s", "g", persistent.ConnectOptions{BufferSize: persistent.MaxConsumerBufferSize + 1}); !errors.Is(err, annals.ErrInvalidInput) {
		t.Fatalf("oversized buffer: %v", err)
	}
	if list, _ := m.List(""); len(list) != 1 {
		t.Fatalf("bad input changed the groups: %d", len(list))
	}
}

func TestCheckpointSurvivesRestart(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{Limits: annals.Limits{AllowSystemStreams: true}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids := appendN(t, store, "order-1", 5)
	m, err := persistent.Open(context.Background(), store, persistent.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(context.Background(), persistent.Config{Stream: "order-1", Group: "billing", Settings: settings()}); err != nil {
		t.Fatal(err)
	}
	c, err := m.Connect("order-1", "billing", persistent.ConnectOptions{BufferSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		d := next(t, c)
		if d.Event.ID != ids[i] {
			t.Fatalf("delivery %d is revision %d", i, d.Event.Revision)
		}
		c.Ack(d.Event.ID)
	}
	m.Close()
	if _, err := c.Next(context.Background()); !errors.Is(err, persistent.ErrClosed) {
		t.Fatalf("a consumer of a closed manager: %v", err)
	}

	m = open(t, store)
	info, err := m.Info("order-1", "billing")
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasCheckpoint || info.Checkpoint != 3 {
		t.Fatalf("checkpoint %d (%v), want 3", info.Checkpoint, info.HasCheckpoint)
	}
	c, err = m.Connect("order-1", "billing", persistent.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := next(t, c); d.Event.ID != ids[3] {
		t.Fatalf("resumed at revision %d, want 3", d.Event.Revision)
	}
}

func TestParkAndReplay(t *testing.T) {
	store := newStore()
	m := open(t, store)
	ctx := context.Background()
	ids := appendN(t, store, "s", 3)
	if err := m.Create(ctx, persistent.Config{Stream: "s", Group: "g", Settings: settings()}); err != nil {
		t.Fatal(err)
	}
	c, err := m.Connect("s", "g", persistent.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d := next(t, c)
		if d.Event.Revision == 1 {
			c.Nack(persistent.NackPark, "broken", d.Event.ID)
		} else {
			c.Ack(d.Event.ID)
		}
	}
	waitFor(t, func() bool { i, _ := m.Info("s", "g"); return i.Parked == 1 && i.Checkpoint == 3 })
	noneFor(t, c, 200*time.Millisecond)
	if err := m.ReplayParked(ctx, "s", "g", 0); err != nil {
		t.Fatal(err)
	}
	d := next(t, c)
	if d.Event.ID != ids[1] {
		t.Fatalf("replayed revision %d, want 1", d.Event.Revision)
	}
	c.Ack(d.Event.ID)
	waitFor(t, func() bool { i, _ := m.Info("s", "g"); return i.Parked == 0 })
	// A second replay finds nothing: the replayed link is gone.
	if err := m.ReplayParked(ctx, "s", "g", 0); err != nil {
		t.Fatal(err)
	}
	noneFor(t, c, 200*time.Millisecond)
}

func TestTimeoutRedeliversToAnotherConsumer(t *testing.T) {
	store := newStore()
	m := open(t, store)
	s := settings()
	s.MessageTimeoutMs = 200
	if err := m.Create(context.Background(), persistent.Config{Stream: "s", Group: "g", Settings: s}); err != nil {
		t.Fatal(err)
	}
	ids := appendN(t, store, "s", 1)
	a, err := m.Connect("s", "g", persistent.ConnectOptions{BufferSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := next(t, a); d.Event.ID != ids[0] || d.RetryCount != 0 {
		t.Fatalf("first delivery %+v", d)
	}
	b, err := m.Connect("s", "g", persistent.ConnectOptions{BufferSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	// a holds it without acknowledging: after the timeout it goes again,
	// again, and reaches b, with a retry count.
	d := next(t, b)
	if d.Event.ID != ids[0] || d.RetryCount < 1 {
		t.Fatalf("redelivery %+v", d)
	}
}

func TestCompetingConsumersShareTheWork(t *testing.T) {
	store := newStore()
	m := open(t, store)
	if err := m.Create(context.Background(), persistent.Config{Stream: annals.AllStream, Group: "g",
		Filter: annals.StreamPrefixFilter("job-"), Settings: settings()}); err != nil {
		t.Fatal(err)
	}
	a, _ := m.Connect(annals.AllStream, "g", persistent.ConnectOptions{BufferSize: 5})
	b, _ := m.Connect(annals.AllStream, "g", persistent.ConnectOptions{BufferSize: 5})
	for i := range 20 {
		appendN(t, store, fmt.Sprintf("job-%d", i), 1)
		appendN(t, store, fmt.Sprintf("other-%d", i), 1)
	}
	seen := map[uuid.UUID]int{}
	counts := map[*persistent.Consumer]int{}
	results := make(chan [2]any, 40)
	// The consumers stop once all 20 are delivered, not after a quiet
	// while, which a loaded machine can make come early.
	ctx, stop := context.WithTimeout(context.Background(), hangGuard)
	defer stop()
	for _, c := range []*persistent.Consumer{a, b} {
		go func() {
			for {
				d, err := c.Next(ctx)
				if err != nil {
					results <- [2]any{c, nil}
					return
				}
				c.Ack(d.Event.ID)
				results <- [2]any{c, d}
			}
		}()
	}
	for done := 0; done < 2; {
		r := <-results
		if r[1] == nil {
			done++
			continue
		}
		d := r[1].(persistent.Delivery)
		if annals.Category(d.Event.Stream) != "job" {
			t.Fatalf("the filter let %s through", d.Event.Stream)
		}
		seen[d.Event.ID]++
		counts[r[0].(*persistent.Consumer)]++
		if len(seen) == 20 {
			stop()
		}
	}
	if len(seen) != 20 || counts[a] == 0 || counts[b] == 0 {
		t.Fatalf("%d events delivered, a took %d, b took %d", len(seen), counts[a], counts[b])
	}
}

func TestSlowConsumerBoundsTheGroup(t *testing.T) {
	store := newStore()
	m := open(t, store)
	s := settings()
	s.LiveBufferSize, s.HistoryBufferSize = 10, 10
	appendN(t, store, "s", 1000)
	if err := m.Create(context.Background(), persistent.Config{Stream: "s", Group: "g", Settings: s}); err != nil {
		t.Fatal(err)
	}
	c, _ := m.Connect("s", "g", persistent.ConnectOptions{BufferSize: 3})
	next(t, c)
	waitFor(t, func() bool {
		i, _ := m.Info("s", "g")
		return i.Buffered == 10 && i.InFlight == 3 && i.LastKnown == 12
	})
	// And it stays there: an absence check (see noneFor).
	time.Sleep(100 * time.Millisecond)
	i, _ := m.Info("s", "g")
	if i.Buffered != 10 || i.InFlight != 3 || i.LastKnown != 12 {
		t.Fatalf("buffered %d, in flight %d, read up to %d: want 10, 3, 12", i.Buffered, i.InFlight, i.LastKnown)
	}
}

func TestDeleteDropsConsumers(t *testing.T) {
	m := open(t, newStore())
	ctx := context.Background()
	if err := m.Create(ctx, persistent.Config{Stream: "s", Group: "g", Settings: settings()}); err != nil {
		t.Fatal(err)
	}
	c, _ := m.Connect("s", "g", persistent.ConnectOptions{})
	if err := m.Delete(ctx, "s", "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, persistent.ErrDropped) {
		t.Fatalf("consumer of a deleted group: %v", err)
	}
	if _, err := m.Info("s", "g"); !errors.Is(err, persistent.ErrGroupNotFound) {
		t.Fatalf("info of a deleted group: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met in %v", hangGuard)
}

func TestUpdateAndRestartKeepTheCheckpoint(t *testing.T) {
	store := newStore()
	m := open(t, store)
	ctx := context.Background()
	ids := appendN(t, store, "s", 4)
	s := settings()
	s.MaxSubscriberCount = 1
	if err := m.Create(ctx, persistent.Config{Stream: "s", Group: "g", Settings: s}); err != nil {
		t.Fatal(err)
	}
	c, _ := m.Connect("s", "g", persistent.ConnectOptions{})
	if _, err := m.Connect("s", "g", persistent.ConnectOptions{}); !errors.Is(err, persistent.ErrMaxSubscribers) {
		t.Fatalf("a second consumer over MaxSubscriberCount 1: %v", err)
	}
	d := next(t, c)
	c.Ack(d.Event.ID)

	s.MaxSubscriberCount, s.Strategy = 2, persistent.DispatchToSingle
	if err := m.Update(ctx, persistent.Config{Stream: "s", Group: "g", Settings: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, persistent.ErrDropped) {
		t.Fatalf("a consumer across an update: %v", err)
	}
	info, _ := m.Info("s", "g")
	if info.Settings.Strategy != persistent.DispatchToSingle || info.Checkpoint != 1 {
		t.Fatalf("after the update: %s, checkpoint %d", info.Settings.Strategy, info.Checkpoint)
	}
	c, _ = m.Connect("s", "g", persistent.ConnectOptions{})
	if d := next(t, c); d.Event.ID != ids[1] {
		t.Fatalf("after the update got revision %d, want 1", d.Event.Revision)
	}
	c.Ack(ids[1])

	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, persistent.ErrDropped) {
		t.Fatalf("a consumer across a restart: %v", err)
	}
	c, _ = m.Connect("s", "g", persistent.ConnectOptions{})
	if d := next(t, c); d.Event.ID != ids[2] {
		t.Fatalf("after the restart got revision %d, want 2", d.Event.Revision)
	}
}
