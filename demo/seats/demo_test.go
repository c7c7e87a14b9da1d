package seats_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/seats"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/remote"
)

// childEnv makes the test binary a demo process (see TestMain): the
// multi-process test starts several.
const childEnv = "ANNALS_SEATS_CHILD"

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		os.Exit(child(url))
	}
	os.Exit(m.Run())
}

// child runs the demo against the store named by target (a server's URL,
// or "postgres:" and a schema) with the configuration in the environment,
// as a separate process would.
func child(target string) int {
	var s annals.Store
	var err error
	if schema, ok := strings.CutPrefix(target, "postgres:"); ok {
		s, err = postgres.Open(context.Background(), teststores.PostgresDSN(), postgres.Options{Schema: schema, MaxConns: 4})
	} else {
		s, err = remote.Dial(target)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	clients, _ := strconv.Atoi(os.Getenv("SEATS_CLIENTS"))
	reservations, _ := strconv.Atoi(os.Getenv("SEATS_RESERVATIONS"))
	seatsN, _ := strconv.Atoi(os.Getenv("SEATS_SEATS"))
	cfg := seats.Config{Conference: os.Getenv("SEATS_CONFERENCE"), Seats: seatsN, Clients: clients,
		Reservations: reservations, CancelPercent: 10, MaxAttempts: 200}
	if _, err := seats.Run(context.Background(), s, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func run(t *testing.T, s annals.Store, cfg seats.Config) seats.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	r, err := seats.Run(ctx, s, cfg, &out)
	t.Logf("%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	v := r.Verification
	if v.MaxReserved > cfg.Seats || v.Capacity != cfg.Seats || v.Err != nil {
		t.Fatalf("verification: %s", v)
	}
	if !strings.Contains(out.String(), "never more than the capacity") {
		t.Fatalf("the report does not say the invariant held")
	}
	return r
}

// consistent checks the report against the replay: with one process, the
// seats the clients were told they hold are the seats the stream holds.
func consistent(t *testing.T, r seats.Report) {
	t.Helper()
	if r.Accepted == 0 || r.Commands == 0 {
		t.Fatalf("nothing accepted: %+v", r)
	}
	written := 1 + r.Accepted + r.UnacknowledgedAccepted + r.Cancelled + r.UnacknowledgedCancelled
	if int64(r.Verification.Events) != written {
		t.Fatalf("%d events for the opening, %d+%d reservations and %d+%d cancellations (acknowledged+not)",
			r.Verification.Events, r.Accepted, r.UnacknowledgedAccepted, r.Cancelled, r.UnacknowledgedCancelled)
	}
}

// A run that ends on its deadline against a server: commands in flight
// then fail with the deadline, which ends the run rather than failing it,
// and the totals count what those commands wrote. Several short runs, as
// both come from the moment the deadline passes.
func TestDemoEndsOnItsDeadline(t *testing.T) {
	s := teststores.Open(t, "server")
	for range 4 {
		consistent(t, run(t, s, seats.Config{Seats: 100, Clients: 50, Duration: 300 * time.Millisecond, CancelPercent: 30}))
	}
}

// Demand beyond supply on every store: the seats run out, some are
// refused, and the replay never shows more than the capacity.
func TestDemo(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) {
			r := run(t, teststores.Open(t, kind), seats.Config{Seats: 60, Clients: 20, Reservations: 200, CancelPercent: 10, MaxAttempts: 200})
			consistent(t, r)
			if r.Rejected == 0 || r.Verification.MaxReserved < 60-seats.MaxSeatsPerReservation {
				t.Fatalf("200 reservations of 60 seats: %d rejected, at most %d reserved", r.Rejected, r.Verification.MaxReserved)
			}
		})
	}
}

// The number: 1,000 concurrent clients on one conference. About
// 10 s; a minute and more under the race detector, so -short skips it.
func TestDemoThousandClients(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 1,000 clients take a while")
	}
	for _, kind := range []string{"embedded", "server"} {
		t.Run(kind, func(t *testing.T) {
			r := run(t, teststores.Open(t, kind), seats.Config{Seats: 200, Clients: 1000, Reservations: 1500, CancelPercent: 10,
				MaxAttempts: 200, MaxBackoff: time.Second})
			consistent(t, r)
			t.Logf("%d commands, %.0f/s, %d conflicts retried, %d gave up", r.Commands, r.Throughput(), r.Conflicts, r.GaveUp)
		})
	}
}

// Several processes, each with many clients, book one conference through
// one server, or on one PostgreSQL schema; each verifies what it was told,
// and the replay holds.
func TestDemoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: three processes of 50 clients (half a minute under the race detector)")
	}
	t.Run("server", func(t *testing.T) {
		store, url := teststores.Serve(t)
		processes(t, store, url)
	})
	t.Run("postgres", func(t *testing.T) {
		schema := teststores.Schema(t)
		processes(t, teststores.Postgres(t, schema), "postgres:"+schema)
	})
}

func processes(t *testing.T, store annals.Store, target string) {
	const n = 3
	conference := "multi-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		cmd.Env = append(os.Environ(), childEnv+"="+target, "SEATS_CONFERENCE="+conference,
			"SEATS_SEATS=150", "SEATS_CLIENTS=50", "SEATS_RESERVATIONS=200")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil || !strings.Contains(outs[i].String(), "never more than the capacity") {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		} else {
			t.Logf("process %d:\n%s", i, outs[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := seats.Verify(ctx, store, conference, nil)
	if err != nil || v.Err != nil {
		t.Fatalf("%v %v", err, v.Err)
	}
	if v.Capacity != 150 || v.MaxReserved > 150 || v.Events < 2 {
		t.Fatalf("replay: %s", v)
	}
	t.Logf("replay: %s", v)
}

// Verify finds an overbooking written past the rules.
func TestVerifyFindsOverbooking(t *testing.T) {
	s := teststores.Open(t, "memory")
	ctx := context.Background()
	for _, e := range []seats.Event{
		seats.ConferenceOpened{Capacity: 5},
		seats.SeatsReserved{Reservation: "a", Seats: 4},
		seats.SeatsReserved{Reservation: "b", Seats: 4}, // what a decision on a stale read would write
	} {
		data, err := seats.Codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, seats.Stream("over"), annals.Any, data); err != nil {
			t.Fatal(err)
		}
	}
	v, err := seats.Verify(ctx, s, "over", map[string]int{"a": 4, "c": 1})
	if err != nil || !errors.Is(v.Err, seats.ErrOverbooked) || v.MaxReserved != 8 {
		t.Fatalf("%v: %s", err, v)
	}
	if !strings.Contains(v.Err.Error(), "8 seats reserved at revision 2") {
		t.Fatalf("the first violation: %v", v.Err)
	}
}
