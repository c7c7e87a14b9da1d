package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
)

const testLeaseTTL = 300 * time.Millisecond

// runAs runs m as the run named holder, until the returned stop.
func runAs(m *process.Manager[purge, purgeEvent], s annals.Store, d process.Dispatcher, holder string) (stop func() error, errs <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- m.Run(ctx, s, d, process.Options{LeaseTTL: testLeaseTTL, Holder: holder}) }()
	return func() error { cancel(); return <-ch }, ch
}

// waitHolder waits until Inspect names holder as the lease's.
func waitHolder(t *testing.T, s annals.Store, holder string, errs ...<-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang guard
	for time.Now().Before(deadline) {
		if rep, err := process.Inspect(context.Background(), s, "purge"); err == nil && rep.Holder == holder {
			return
		}
		for _, ch := range errs {
			select {
			case err := <-ch:
				t.Fatalf("a run ended: %v", err)
			default:
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never held the lease", holder)
}

// TestStandby: a second run of a manager waits while the first holds the
// lease (it neither fails nor sends), and takes over the work when the
// first stops.
func TestStandby(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) { testStandby(t, kind) })
	}
}

func testStandby(t *testing.T, kind string) {
	s := teststores.Open(t, kind)
	h := boxHandler(s)
	boxes := []string{"box-a", "box-b", "box-c"}
	fill(t, h, boxes)
	var sentA, sentB atomic.Int64
	stopA, errsA := runAs(purgeManager(process.Policy{}), s, routes(h, &sentA), "a")
	waitHolder(t, s, "a", errsA)
	stopB, errsB := runAs(purgeManager(process.Policy{}), s, routes(h, &sentB), "b")
	request(t, s, "r1", boxes[:2])
	finished(t, s, "r1", errsA)
	time.Sleep(2 * testLeaseTTL) // b had the time to take over, if it were to
	if sentA.Load() != 2 || sentB.Load() != 0 {
		t.Fatalf("sent by a %d, by b %d; want 2 and 0", sentA.Load(), sentB.Load())
	}
	if err := stopA(); !errors.Is(err, context.Canceled) {
		t.Fatalf("a: %v", err)
	}
	waitHolder(t, s, "b", errsB)
	request(t, s, "r2", boxes[2:])
	finished(t, s, "r2", errsB)
	if err := stopB(); !errors.Is(err, context.Canceled) {
		t.Fatalf("b: %v", err)
	}
	if sentB.Load() != 1 {
		t.Errorf("b sent %d commands, want 1", sentB.Load())
	}
	if rep, err := process.Inspect(context.Background(), s, "purge"); err != nil || rep.Holder != "" {
		t.Errorf("after both stopped: holder %q, %v; want none", rep.Holder, err)
	}
}

// takeOver writes a lease record as a run named holder would, at the
// stream's last revision.
func takeOver(t *testing.T, s annals.Store, holder string) {
	t.Helper()
	last := lastRevision(s, "process.purge.lease")
	data, _ := json.Marshal(map[string]any{"holder": holder, "ttl_ms": testLeaseTTL.Milliseconds()})
	if _, err := s.Append(context.Background(), "process.purge.lease", annals.Exact(annals.Revision(last)), annals.EventData{Type: "process.lease", Data: data}); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseLost: a run whose lease another took over stops sending and
// goes back to standby; when that other holder stops renewing (it was
// killed), the run takes the lease again, a time to live later, and goes
// on with the work.
func TestLeaseLost(t *testing.T) {
	s := teststores.Open(t, "embedded")
	h := boxHandler(s)
	boxes := []string{"box-a", "box-b"}
	fill(t, h, boxes)
	var sent atomic.Int64
	stop, errs := runAs(purgeManager(process.Policy{}), s, routes(h, &sent), "a")
	waitHolder(t, s, "a", errs)
	takeOver(t, s, "killed")
	taken := time.Now()
	request(t, s, "r1", boxes)
	waitHolder(t, s, "a", errs)
	if waited := time.Since(taken); waited < testLeaseTTL {
		t.Errorf("a took the lease back %v after it was taken, before its time to live %v", waited, testLeaseTTL)
	}
	finished(t, s, "r1", errs)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("a: %v", err)
	}
	if sent.Load() != 2 {
		t.Errorf("%d commands sent, want 2", sent.Load())
	}
}

// TestLeaseTTLRange: a time to live out of range is refused before the
// run starts.
func TestLeaseTTLRange(t *testing.T) {
	s := teststores.Open(t, "memory")
	for _, ttl := range []time.Duration{time.Millisecond, time.Hour, -time.Second} {
		err := purgeManager(process.Policy{}).Run(context.Background(), s, process.Routes{}, process.Options{LeaseTTL: ttl})
		if !errors.Is(err, process.ErrLeaseTTL) {
			t.Errorf("LeaseTTL %v: %v", ttl, err)
		}
	}
	if got := teststores.Types(t, s, "process.purge.lease"); got != "" {
		t.Errorf("the lease stream after refusals: %q", got)
	}
}
