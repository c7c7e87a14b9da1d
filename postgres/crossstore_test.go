package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Two Stores on one schema are two nodes of a service: each has its own
// writer and group commits, and only the database decides between them.

// TestSeatBookingAcrossStores books seats of one concert from goroutines on
// two Stores, each reading the stream, deciding, and appending with the
// revision it read. The concert must never be overbooked and every seat
// must be booked once.
func TestSeatBookingAcrossStores(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	a := openTest(t, schema, Options{})
	b := openTest(t, schema, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	const (
		capacity = 40
		bookers  = 16 // half on each store
		stream   = "concert-1"
	)
	var (
		mu        sync.Mutex
		booked    = map[uuid.UUID]annals.Revision{} // booking id -> revision
		conflicts int
		wg        sync.WaitGroup
		// Every booker reads the empty stream before any appends: they
		// race for the first seat, however the machine schedules them.
		readFirst sync.WaitGroup
	)
	readFirst.Add(bookers)
	for g := range bookers {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for first := true; ; first = false {
				events, err := readAllOf(ctx, s, stream)
				if first {
					readFirst.Done()
					readFirst.Wait()
				}
				if err != nil && !errors.Is(err, annals.ErrStreamNotFound) {
					t.Errorf("booker %d: read: %v", g, err)
					return
				}
				if len(events) >= capacity {
					return // sold out
				}
				expected := annals.NoStream
				if len(events) > 0 {
					expected = annals.Exact(events[len(events)-1].Revision)
				}
				id := uuid.New()
				res, err := s.Append(ctx, stream, expected, annals.EventData{ID: id, Type: "SeatBooked",
					Data: fmt.Appendf(nil, `{"seat":%d,"booker":%d}`, len(events)+1, g)})
				if errors.Is(err, annals.ErrWrongExpectedRevision) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("booker %d: append: %v", g, err)
					return
				}
				r, _ := res.NextExpected.Revision()
				mu.Lock()
				booked[id] = r
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range []*Store{a, b} {
		events, err := readAllOf(ctx, s, stream)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != capacity {
			t.Fatalf("%d seats booked, capacity %d", len(events), capacity)
		}
		for i, e := range events {
			if e.Revision != annals.Revision(i) {
				t.Fatalf("booking %d has revision %d", i, e.Revision)
			}
			if r, ok := booked[e.ID]; !ok || r != e.Revision {
				t.Fatalf("booking at revision %d (%s) was not acknowledged there (acknowledged: %v, at %d)", e.Revision, e.ID, ok, r)
			}
		}
	}
	if len(booked) != capacity {
		t.Fatalf("%d bookings acknowledged, capacity %d", len(booked), capacity)
	}
	if conflicts == 0 {
		t.Fatalf("no booker ever conflicted: the test did not race")
	}
	t.Logf("%d seats booked by %d bookers on two stores, %d conflicts refused", capacity, bookers, conflicts)
}

func readAllOf(ctx context.Context, s annals.Store, stream string) ([]annals.Event, error) {
	var out []annals.Event
	for e, err := range s.ReadStream(ctx, stream, annals.ReadStreamOptions{}) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// TestSubscriptionsAcrossStores writes through two Stores while a
// subscription on each follows $all: both see every event, in one order,
// including the other Store's (woken by NOTIFY, or the poll).
func TestSubscriptionsAcrossStores(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	stores := []*Store{openTest(t, schema, Options{}), openTest(t, schema, Options{})}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	const perStore, writersPerStore = 200, 4
	const total = 2 * perStore * writersPerStore

	got := make([][]uuid.UUID, len(stores))
	var subWG sync.WaitGroup
	ready := make(chan struct{}, len(stores))
	for i, s := range stores {
		subWG.Go(func() {
			for m, err := range s.SubscribeToAll(ctx, annals.SubscribeAllOptions{}) {
				if err != nil {
					t.Errorf("subscription on store %d: %v", i, err)
					return
				}
				if m.Kind == annals.MessageCaughtUp {
					ready <- struct{}{}
				}
				if m.Kind != annals.MessageEvent {
					continue
				}
				if m.Event.Position != annals.Position(len(got[i])+1) {
					t.Errorf("subscription on store %d: position %d after %d events", i, m.Event.Position, len(got[i]))
					return
				}
				got[i] = append(got[i], m.Event.ID)
				if len(got[i]) == total {
					return
				}
			}
		})
	}
	for range stores {
		<-ready
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, s := range stores {
		for w := range writersPerStore {
			wg.Go(func() {
				for n := range perStore {
					stream := fmt.Sprintf("node%d-%d", i, w)
					if _, err := s.Append(ctx, stream, annals.Any, annals.EventData{Type: "Written", Data: fmt.Appendf(nil, `{"n":%d}`, n)}); err != nil {
						t.Errorf("store %d: %v", i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	subWG.Wait()
	if t.Failed() {
		return
	}
	if !slices.Equal(got[0], got[1]) {
		t.Fatalf("the two subscriptions saw different orders")
	}
	t.Logf("%d events written through two stores; both subscriptions got all, in one order, %v after the first write", total, time.Since(start).Round(time.Millisecond))
}
