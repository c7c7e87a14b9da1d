package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// TestServerRestart restarts the PostgreSQL server itself (pg_ctlcluster
// restart -m fast: every backend is cut, the server recovers from its WAL)
// while 16 writers append and a subscription follows $all. Each append
// gets success or a clear error; an append answered ErrCommitUnknown is
// retried with the same event ids. Afterwards every acknowledged event is
// in the log exactly once, at its acknowledged position, the log has no
// gap, and the subscription delivered all of it.
//
// It restarts the machine's server, so it runs only when asked:
// ANNALS_TEST_RESTART_POSTGRES=1 (.ci/run does, after the other tests).
func TestServerRestart(t *testing.T) {
	if os.Getenv("ANNALS_TEST_RESTART_POSTGRES") != "1" {
		t.Skip("restarts the PostgreSQL server: set ANNALS_TEST_RESTART_POSTGRES=1 to run it")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) != 1 {
		t.Fatalf("want one cluster version under /etc/postgresql: %v", err)
	}
	version := versions[0].Name()
	s := openTest(t, testSchema(t), Options{PollInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var before time.Time
	if err := admin(t).QueryRow(ctx, `SELECT pg_postmaster_start_time()`).Scan(&before); err != nil {
		t.Fatal(err)
	}

	live := make(chan annals.Event, 1<<16)
	subDone := make(chan error, 1)
	go func() {
		for m, err := range s.SubscribeToAll(ctx, annals.SubscribeAllOptions{}) {
			if err != nil {
				subDone <- err
				return
			}
			if m.Kind == annals.MessageEvent {
				live <- m.Event
			}
		}
	}()

	var (
		mu       sync.Mutex
		acked    = map[uuid.UUID]annals.Position{}
		notWrit  = map[uuid.UUID]bool{}
		errs     = map[string]int{}
		wg       sync.WaitGroup
		restarts = make(chan time.Duration, 1)
	)
	stopAt := time.Now().Add(6 * time.Second)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		start := time.Now()
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast").CombinedOutput()
		if err != nil {
			t.Errorf("restarting PostgreSQL: %v: %s", err, out)
		}
		restarts <- time.Since(start)
	}()
	for w := range 16 {
		wg.Go(func() {
			for time.Now().Before(stopAt) {
				id := uuid.New()
				ev := annals.EventData{ID: id, Type: "Survived"}
				for {
					res, err := s.Append(ctx, fmt.Sprintf("restart-%d", w), annals.Any, ev)
					mu.Lock()
					switch {
					case err == nil:
						acked[id] = res.LastPosition
					case errors.Is(err, ErrNotWritten):
						notWrit[id] = true
						errs["not written"]++
					case errors.Is(err, ErrCommitUnknown):
						errs["commit unknown (retried)"]++
					default:
						t.Errorf("writer %d: an unclear error: %v", w, err)
					}
					mu.Unlock()
					if !errors.Is(err, ErrCommitUnknown) || ctx.Err() != nil {
						break
					}
					// The outcome is unknown: the same ids again, until
					// the store can say.
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	took := <-restarts
	if t.Failed() {
		return
	}
	t.Logf("restart took %v; %d appends acknowledged, errors %v", took, len(acked), errs)

	checkStorm(t, ctx, s, acked, notWrit, live, subDone, nil)
	var after time.Time
	if err := admin(t).QueryRow(ctx, `SELECT pg_postmaster_start_time()`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !after.After(before) {
		t.Fatalf("the server's start time %v did not move (was %v): it was not restarted", after, before)
	}
}
