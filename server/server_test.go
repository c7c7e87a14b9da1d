package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/remote"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// hangGuard bounds the tests' waits and calls: far above any normal run,
// only there so that a broken server fails its test instead of hanging
// it. No verdict depends on the machine's speed.
const hangGuard = 5 * time.Minute

// settleGoroutines waits until at most limit goroutines run (those of
// calls that ended exit asynchronously) and returns how many run; after
// hangGuard it returns the count however high: a leak.
func settleGoroutines(limit int) int {
	deadline := time.Now().Add(hangGuard)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve serves a fresh embedded store on a loopback port until the test
// ends, and returns the store and the address.
func serve(t *testing.T) (annals.Store, string) {
	t.Helper()
	store := teststores.Embedded(t)
	return store, teststores.ServeStore(t, store, server.Options{})
}

// start serves a fresh store and returns an official KurrentDB Go client
// connected to it, and the address.
func start(t *testing.T) (*kurrentdb.Client, string) {
	t.Helper()
	_, addr := serve(t)
	client := connect(t, addr)
	t.Cleanup(func() { client.Close() })
	return client, addr
}

func event(typ, data string) kurrentdb.EventData {
	return kurrentdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kurrentdb.ContentTypeJson, Data: []byte(data)}
}

func readAll(t *testing.T, rs *kurrentdb.ReadStream) []*kurrentdb.RecordedEvent {
	t.Helper()
	defer rs.Close()
	var out []*kurrentdb.RecordedEvent
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Event)
	}
}

func code(err error) kurrentdb.ErrorCode {
	var e *kurrentdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

func TestOfficialGoClient(t *testing.T) {
	client, addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	// Append at an expected state, then the compare-and-swap refuses a stale one.
	r, err := client.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}},
		event("OrderPlaced", `{"seats":5}`), event("OrderPaid", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.NextExpectedVersion != 1 || r.CommitPosition != 2 {
		t.Fatalf("append result %+v, want revision 1 at position 2", r)
	}
	_, err = client.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, event("OrderPlaced", `{}`))
	if code(err) != kurrentdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("stale append: got %v, want a wrong-expected-version error", err)
	}
	if _, err := client.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.StreamRevision{Value: 1}}, event("OrderShipped", `{}`)); err != nil {
		t.Fatal(err)
	}

	// Read the stream forwards and backwards, and $all.
	rs, err := client.ReadStream(ctx, "order-1", kurrentdb.ReadStreamOptions{}, ^uint64(0)>>1)
	if err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, rs)
	if len(evs) != 3 || evs[0].EventType != "OrderPlaced" || string(evs[0].Data) != `{"seats":5}` || evs[2].EventNumber != 2 {
		t.Fatalf("read %d events: %+v", len(evs), evs)
	}
	if evs[0].CreatedDate.IsZero() || time.Since(evs[0].CreatedDate) > time.Minute {
		t.Fatalf("created date %v", evs[0].CreatedDate)
	}
	rs, err = client.ReadStream(ctx, "order-1", kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if evs := readAll(t, rs); len(evs) != 1 || evs[0].EventType != "OrderShipped" {
		t.Fatalf("backwards read: %+v", evs)
	}
	rs, err = client.ReadAll(ctx, kurrentdb.ReadAllOptions{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if evs := readAll(t, rs); len(evs) != 3 || evs[2].Position.Commit != 3 {
		t.Fatalf("$all: %+v", evs)
	}

	// A missing stream; a soft delete; a tombstone.
	rs, err = client.ReadStream(ctx, "missing", kurrentdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); code(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Fatalf("missing stream: got %v, want resource not found", err)
	}
	rs.Close()
	if _, err := client.DeleteStream(ctx, "order-1", kurrentdb.DeleteStreamOptions{StreamState: kurrentdb.StreamRevision{Value: 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.TombstoneStream(ctx, "order-2", kurrentdb.TombstoneStreamOptions{StreamState: kurrentdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	_, err = client.AppendToStream(ctx, "order-2", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Any{}}, event("X", `{}`))
	if code(err) != kurrentdb.ErrorCodeStreamDeleted {
		t.Fatalf("append to a tombstoned stream: got %v, want stream deleted", err)
	}

	// The same port serves HTTP.
	resp, err := http.Get("http://" + addr + "/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("/health/live: %d", resp.StatusCode)
	}
	// And KurrentDB's ping, as its clients' HTTP helpers expect it.
	resp, err = http.Get("http://" + addr + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"text":"Ping request successfully handled"}` {
		t.Fatalf("/ping: %d %s", resp.StatusCode, body)
	}
}

func TestOfficialGoClientSubscription(t *testing.T) {
	client, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if _, err := client.AppendToStream(ctx, "seat-1", kurrentdb.AppendToStreamOptions{}, event("Booked", `{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	sub, err := client.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var seen []string
	for len(seen) < 2 {
		e := sub.Recv()
		switch {
		case e.SubscriptionDropped != nil:
			t.Fatalf("dropped: %v", e.SubscriptionDropped.Error)
		case e.CaughtUp != nil:
			// History delivered: now a live event.
			if _, err := client.AppendToStream(ctx, "seat-2", kurrentdb.AppendToStreamOptions{}, event("Booked", `{"n":2}`)); err != nil {
				t.Fatal(err)
			}
		case e.EventAppeared != nil:
			seen = append(seen, e.EventAppeared.Event.StreamID)
		}
	}
	if seen[0] != "seat-1" || seen[1] != "seat-2" {
		t.Fatalf("subscription delivered %v", seen)
	}
}

// An event id recorded in a stream is refused at another place of that
// stream, over the wire too: AlreadyExists with its own exception, which
// package remote turns back into annals.ErrDuplicateEventID. In another
// stream it is a new event, as in KurrentDB (ids are scoped to a stream).
func TestDuplicateEventIDOverTheWire(t *testing.T) {
	store, addr := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	id := uuid.New()
	if _, err := store.Append(ctx, "first", annals.NoStream, annals.EventData{ID: id, Type: "Once"}); err != nil {
		t.Fatal(err)
	}
	r, err := remote.Dial("kurrentdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Append(ctx, "first", annals.Exact(0), annals.EventData{ID: id, Type: "Twice"})
	var dup *annals.DuplicateEventError
	if !errors.Is(err, annals.ErrDuplicateEventID) || !errors.As(err, &dup) || dup.ID != id || dup.Stream != "first" || dup.Revision != 0 {
		t.Fatalf("the same id again in its stream, through remote: %v, want a *DuplicateEventError naming first@0", err)
	}
	if _, err := r.Append(ctx, "second", annals.Any, annals.EventData{ID: id, Type: "Elsewhere"}); err != nil {
		t.Fatalf("the same id in another stream, through remote: %v", err)
	}
	// A retry at the same place is no error.
	if _, err := r.Append(ctx, "first", annals.NoStream, annals.EventData{ID: id, Type: "Once"}); err != nil {
		t.Fatalf("a retry of the first append: %v", err)
	}
}
