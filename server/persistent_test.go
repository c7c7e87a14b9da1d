package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// servePersistent serves an embedded store in dir that allows system
// streams (as annals serve does) until stop is called, and returns an
// official client connected to it.
func servePersistent(t *testing.T, dir string) (client *kurrentdb.Client, stop func()) {
	t.Helper()
	addr, stopServer := servePersistentAt(t, dir)
	client = connect(t, addr)
	return client, func() { client.Close(); stopServer() }
}

// servePersistentAt serves the store in dir and returns its address.
func servePersistentAt(t *testing.T, dir string) (addr string, stop func()) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	limits := annals.Limits{AllowSystemStreams: true}
	store, err := embedded.Open(dir, embedded.Options{Logger: quiet, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(store, server.Options{Logger: quiet, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
			if err := <-served; err != nil {
				t.Error(err)
			}
			store.Close()
		})
	}
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

func appendEvents(t *testing.T, client *kurrentdb.Client, stream string, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	var evs []kurrentdb.EventData
	for range n {
		e := event("Booked", `{}`)
		ids = append(ids, e.EventID)
		evs = append(evs, e)
	}
	if _, err := client.AppendToStream(context.Background(), stream, kurrentdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatal(err)
	}
	return ids
}

// recv waits for an event; a drop fails the test.
func recv(t *testing.T, sub *kurrentdb.PersistentSubscription) *kurrentdb.EventAppeared {
	t.Helper()
	got := make(chan *kurrentdb.PersistentSubscriptionEvent, 1)
	go func() { got <- sub.Recv() }()
	select {
	case e := <-got:
		if e.SubscriptionDropped != nil {
			t.Fatalf("dropped: %v", e.SubscriptionDropped.Error)
		}
		return e.EventAppeared
	case <-time.After(hangGuard):
		t.Fatalf("no event in %v", hangGuard)
	}
	return nil
}

func fromStart() kurrentdb.PersistentStreamSubscriptionOptions {
	s := kurrentdb.SubscriptionSettingsDefault()
	s.CheckpointLowerBound, s.CheckpointUpperBound = 1, 1
	return kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}, Settings: &s}
}

func TestPersistentSubscriptionOfficialClient(t *testing.T) {
	client, _ := servePersistent(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ids := appendEvents(t, client, "order-1", 3)

	if err := client.CreatePersistentSubscription(ctx, "order-1", "billing", fromStart()); err != nil {
		t.Fatal(err)
	}
	err := client.CreatePersistentSubscription(ctx, "order-1", "billing", fromStart())
	if code(err) != kurrentdb.ErrorCodeResourceAlreadyExists {
		t.Fatalf("second create: %v", err)
	}
	sub, err := client.SubscribeToPersistentSubscription(ctx, "missing", "billing", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
	if err == nil {
		err = sub.Recv().SubscriptionDropped.Error
	}
	if code(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Fatalf("subscribe to a missing group: %v", err)
	}

	sub, err = client.SubscribeToPersistentSubscription(ctx, "order-1", "billing", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first, second := recv(t, sub), recv(t, sub)
	if first.Event.OriginalEvent().EventID != ids[0] || second.Event.OriginalEvent().EventID != ids[1] {
		t.Fatal("events out of order")
	}
	// Park the first, ack the second: the third comes.
	if err := sub.Nack("cannot bill", kurrentdb.NackActionPark, first.Event); err != nil {
		t.Fatal(err)
	}
	if err := sub.Ack(second.Event); err != nil {
		t.Fatal(err)
	}
	third := recv(t, sub)
	if third.Event.OriginalEvent().EventID != ids[2] || third.RetryCount != 0 {
		t.Fatalf("third: %+v", third)
	}
	sub.Ack(third.Event)
	waitInfo(t, client, "order-1", "billing", func(i *kurrentdb.PersistentSubscriptionInfo) bool {
		return i.Stats.ParkedMessagesCount == 1 && i.Stats.LastCheckpointedEventRevision != nil && *i.Stats.LastCheckpointedEventRevision == 2
	})

	// Replay the parked one.
	if err := client.ReplayParkedMessages(ctx, "order-1", "billing", kurrentdb.ReplayParkedMessagesOptions{}); err != nil {
		t.Fatal(err)
	}
	replayed := recv(t, sub)
	if replayed.Event.OriginalEvent().EventID != ids[0] {
		t.Fatal("replay delivered another event")
	}
	sub.Ack(replayed.Event)

	info, err := client.GetPersistentSubscriptionInfo(ctx, "order-1", "billing", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.EventSource != "order-1" || len(info.Connections) != 1 || info.Settings.ConsumerStrategyName != kurrentdb.ConsumerStrategyRoundRobin {
		t.Fatalf("info %+v", info)
	}
	list, err := client.ListAllPersistentSubscriptions(ctx, kurrentdb.ListPersistentSubscriptionsOptions{})
	if err != nil || len(list) != 1 || list[0].GroupName != "billing" {
		t.Fatalf("list: %v %+v", err, list)
	}
	_, err = client.GetPersistentSubscriptionInfo(ctx, "order-1", "nope", kurrentdb.GetPersistentSubscriptionOptions{})
	if code(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Fatalf("info of a missing group: %v", err)
	}

	// Delete ends the consumer.
	if err := client.DeletePersistentSubscription(ctx, "order-1", "billing", kurrentdb.DeletePersistentSubscriptionOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := sub.Recv(); e.SubscriptionDropped == nil {
		t.Fatal("the consumer of a deleted group was not dropped")
	}
	err = client.DeletePersistentSubscription(ctx, "order-1", "billing", kurrentdb.DeletePersistentSubscriptionOptions{})
	if code(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Fatalf("second delete: %v", err)
	}
}

func waitInfo(t *testing.T, client *kurrentdb.Client, stream, group string, cond func(*kurrentdb.PersistentSubscriptionInfo) bool) {
	t.Helper()
	var last *kurrentdb.PersistentSubscriptionInfo
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		info, err := client.GetPersistentSubscriptionInfo(context.Background(), stream, group, kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if last = info; cond(info) {
			return
		}
	}
	t.Fatalf("group info never as expected: %+v", last.Stats)
}

func TestPersistentCompetingConsumers(t *testing.T) {
	client, _ := servePersistent(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := client.CreatePersistentSubscriptionToAll(ctx, "workers", kurrentdb.PersistentAllSubscriptionOptions{
		StartFrom: kurrentdb.Start{}, Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"job-"}},
	}); err != nil {
		t.Fatal(err)
	}
	const jobs = 30
	for i := range jobs {
		appendEvents(t, client, "job-"+uuid.NewString(), 1)
		if i%3 == 0 {
			appendEvents(t, client, "other-"+uuid.NewString(), 1)
		}
	}
	type got struct {
		consumer int
		id       uuid.UUID
		stream   string
	}
	results := make(chan got, jobs*2)
	// Neither consumer acks before both are subscribed: the first holds
	// at most its buffer of 3 unacknowledged, so the second takes a
	// share however late it connects.
	both := make(chan struct{})
	for n := range 2 {
		sub, err := client.SubscribeToPersistentSubscriptionToAll(ctx, "workers", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		// The client's Ack and Close both send on the call's stream, which
		// gRPC does not allow at once: the test's end closes under the lock
		// its consumer acks under.
		var sending sync.Mutex
		defer func() {
			sending.Lock()
			defer sending.Unlock()
			sub.Close()
		}()
		go func() {
			<-both
			for {
				e := sub.Recv()
				if e.EventAppeared == nil {
					return
				}
				ev := e.EventAppeared.Event.OriginalEvent()
				sending.Lock()
				sub.Ack(e.EventAppeared.Event)
				sending.Unlock()
				results <- got{n, ev.EventID, ev.StreamID}
			}
		}()
	}
	close(both)
	seen := map[uuid.UUID]bool{}
	per := [2]int{}
	for len(seen) < jobs {
		select {
		case g := <-results:
			if annals.Category(g.stream) != "job" {
				t.Fatalf("filter let %s through", g.stream)
			}
			seen[g.id] = true
			per[g.consumer]++
		case <-ctx.Done():
			t.Fatalf("%d of %d jobs delivered", len(seen), jobs)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Fatalf("one consumer did all the work: %v", per)
	}
}

func TestPersistentResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	client, stop := servePersistent(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ids := appendEvents(t, client, "ledger", 6)
	if err := client.CreatePersistentSubscription(ctx, "ledger", "audit", fromStart()); err != nil {
		t.Fatal(err)
	}
	sub, err := client.SubscribeToPersistentSubscription(ctx, "ledger", "audit", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		e := recv(t, sub)
		if e.Event.OriginalEvent().EventID != ids[i] {
			t.Fatalf("delivery %d out of order", i)
		}
		sub.Ack(e.Event)
	}
	// Revision 4 is delivered, never acknowledged.
	if e := recv(t, sub); e.Event.OriginalEvent().EventID != ids[4] {
		t.Fatal("fifth delivery out of order")
	}
	stop()

	client, _ = servePersistent(t, dir)
	sub, err = client.SubscribeToPersistentSubscription(ctx, "ledger", "audit", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// At least once: the unacknowledged one comes again, then the rest.
	for _, want := range ids[4:] {
		if e := recv(t, sub); e.Event.OriginalEvent().EventID != want {
			t.Fatalf("after the restart got revision %d, want %v", e.Event.OriginalEvent().EventNumber, want)
		}
	}
}

func TestPersistentBadInputKeepsServing(t *testing.T) {
	client, _ := servePersistent(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	bad := kurrentdb.SubscriptionSettingsDefault()
	bad.LiveBufferSize = -1
	err := client.CreatePersistentSubscription(ctx, "s", "g", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &bad})
	var kerr *kurrentdb.Error
	if !errors.As(err, &kerr) || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("bad settings: %v", err)
	}
	_, err = client.GetPersistentSubscriptionInfo(ctx, "s", "g", kurrentdb.GetPersistentSubscriptionOptions{})
	if code(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Fatalf("a refused create left a group: %v", err)
	}
	if err := client.CreatePersistentSubscription(ctx, "s", "g", kurrentdb.PersistentStreamSubscriptionOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.UpdatePersistentSubscription(ctx, "s", "g", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &bad}); err == nil {
		t.Fatal("update with bad settings accepted")
	}
	if err := client.RestartPersistentSubscriptionSubsystem(ctx, kurrentdb.RestartPersistentSubscriptionSubsystemOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := client.GetPersistentSubscriptionInfo(ctx, "s", "g", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil || info.Settings.LiveBufferSize != 500 {
		t.Fatalf("after a refused update and a restart: %v %+v", err, info)
	}
}

func TestPersistentDisconnectRedelivers(t *testing.T) {
	client, _ := servePersistent(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ids := appendEvents(t, client, "mail", 2)
	if err := client.CreatePersistentSubscription(ctx, "mail", "senders", fromStart()); err != nil {
		t.Fatal(err)
	}
	a, err := client.SubscribeToPersistentSubscription(ctx, "mail", "senders", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, a)
	recv(t, a)
	a.Close() // both unacknowledged: they go to the next consumer
	b, err := client.SubscribeToPersistentSubscription(ctx, "mail", "senders", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := map[uuid.UUID]bool{}
	for range 2 {
		e := recv(t, b)
		got[e.Event.OriginalEvent().EventID] = true
		b.Ack(e.Event)
	}
	if !got[ids[0]] || !got[ids[1]] {
		t.Fatalf("after a disconnect got %v, want both events", got)
	}
	// The server still serves.
	info, err := client.GetPersistentSubscriptionInfo(ctx, "mail", "senders", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil || len(info.Connections) != 1 {
		t.Fatalf("info after a disconnect: %v %+v", err, info)
	}
}
