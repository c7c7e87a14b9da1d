package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Two processes on one schema: this test and a copy of the test binary
// (TestChildProcess, which runs only when started by this test). Both
// append, both book seats of one concert, and a subscription here follows
// $all. The subscription must get every event of both processes in
// position order, and the concert must not be overbooked.

const (
	childSchemaEnv = "ANNALS_POSTGRES_CHILD_SCHEMA"
	processEvents  = 300 // appended by each process
	processSeats   = 30  // the concert's capacity, booked by both
)

func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	schema := testSchema(t)
	s := openTest(t, schema, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	const total = 2 * processEvents // plus the seats, counted at the end
	var (
		gotMu sync.Mutex
		got   []annals.Event
	)
	subDone := make(chan error, 1)
	caughtUp := make(chan struct{})
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	go func() {
		for m, err := range s.SubscribeToAll(subCtx, annals.SubscribeAllOptions{}) {
			if err != nil {
				subDone <- err
				return
			}
			switch m.Kind {
			case annals.MessageCaughtUp:
				close(caughtUp)
			case annals.MessageEvent:
				gotMu.Lock()
				got = append(got, m.Event)
				gotMu.Unlock()
			}
		}
	}()
	<-caughtUp

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	child.Env = append(os.Environ(), childSchemaEnv+"="+schema)
	out := make(chan error, 1)
	var childOut []byte
	go func() {
		var err error
		childOut, err = child.CombinedOutput()
		out <- err
	}()
	if err := appendAndBook(ctx, s, "parent"); err != nil {
		t.Fatal(err)
	}
	if err := <-out; err != nil {
		t.Fatalf("child process: %v\n%s", err, childOut)
	}

	var log []annals.Event
	for e, err := range s.ReadAll(ctx, annals.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	seats, byProcess := 0, map[string]int{}
	for i, e := range log {
		if e.Position != annals.Position(i+1) {
			t.Fatalf("the log has a gap at index %d (position %d)", i, e.Position)
		}
		if e.Stream == "concert-1" {
			seats++
			continue
		}
		byProcess[annals.Category(e.Stream)]++
	}
	if seats != processSeats || byProcess["parent"] != processEvents || byProcess["child"] != processEvents {
		t.Fatalf("the log has %d seats (capacity %d) and %v events by process, want %d each", seats, processSeats, byProcess, processEvents)
	}
	// The subscription here saw the child's events too, in log order.
	deadline := time.After(hangGuard)
	delivered := func() int {
		gotMu.Lock()
		defer gotMu.Unlock()
		return len(got)
	}
	for delivered() < len(log) {
		select {
		case err := <-subDone:
			t.Fatalf("subscription ended: %v", err)
		case <-deadline:
			t.Fatalf("the subscription delivered %d of %d events", delivered(), len(log))
		case <-time.After(10 * time.Millisecond):
		}
	}
	gotMu.Lock()
	defer gotMu.Unlock()
	for i := range log {
		if got[i].ID != log[i].ID || got[i].Position != log[i].Position {
			t.Fatalf("the subscription's event %d is position %d, the log's is %d", i, got[i].Position, log[i].Position)
		}
	}
	t.Logf("two processes wrote %d events and booked %d seats of %d; the subscription here delivered all %d in log order",
		total, seats, processSeats, len(log))
}

// TestChildProcess is the other process of TestTwoProcesses; it does
// nothing unless that test started it.
func TestChildProcess(t *testing.T) {
	schema := os.Getenv(childSchemaEnv)
	if schema == "" {
		t.Skip("runs only as the child of TestTwoProcesses")
	}
	s := openTest(t, schema, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := appendAndBook(ctx, s, "child"); err != nil {
		t.Fatal(err)
	}
}

// appendAndBook appends processEvents events to streams named after the
// process, and books seats of concert-1 until it is sold out, from four
// goroutines each.
func appendAndBook(ctx context.Context, s *Store, process string) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			for i := range processEvents / 4 {
				stream := process + "-" + strconv.Itoa(w)
				if _, err := s.Append(ctx, stream, annals.Any, annals.EventData{Type: "Written", Data: fmt.Appendf(nil, `{"i":%d}`, i)}); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for {
				seats, err := readAllOf(ctx, s, "concert-1")
				if err != nil && !errors.Is(err, annals.ErrStreamNotFound) {
					errs <- err
					return
				}
				if len(seats) >= processSeats {
					return
				}
				expected := annals.NoStream
				if len(seats) > 0 {
					expected = annals.Exact(seats[len(seats)-1].Revision)
				}
				_, err = s.Append(ctx, "concert-1", expected, annals.EventData{ID: uuid.New(), Type: "SeatBooked",
					Data: fmt.Appendf(nil, `{"by":%q}`, process)})
				if err != nil && !errors.Is(err, annals.ErrWrongExpectedRevision) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
