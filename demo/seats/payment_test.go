package seats_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/demo/seats"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
)

// TestPayments: of three reservations, the one paid stands, the one whose
// payment failed is released, and the one not paid in 15 minutes is
// released when the deadline passes, though no run was going then; each
// release once.
func TestPayments(t *testing.T) {
	ctx := context.Background()
	s := teststores.Embedded(t)
	h := &command.Handler[seats.State, seats.Command, seats.Event]{Store: s, Decider: seats.Decider, Codec: seats.Codec}
	conference := seats.Stream("c1")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.Handle(ctx, conference, seats.Open{Capacity: 10}))
	for id, n := range map[string]int{"r1": 3, "r2": 2, "r3": 4} {
		must(h.Handle(ctx, conference, seats.Reserve{Reservation: id, Seats: n}))
	}
	var now atomic.Pointer[time.Time]
	at := func(t time.Time) { now.Store(&t) }
	at(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	m := seats.Payments()
	run := func(until func() bool) {
		t.Helper()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- m.Run(runCtx, s, seats.PaymentRoutes(h), process.Options{Now: func() time.Time { return *now.Load() }})
		}()
		for deadline := time.Now().Add(20 * time.Second); !until(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the payments never came to what the test waits for")
			}
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("the run: %v", err)
		}
	}
	status := func(id string) process.Status {
		st, _, err := process.InspectInstance(ctx, s, "payments", id)
		if err != nil {
			return ""
		}
		return st.Status
	}
	must(s.Append(ctx, seats.PaymentStream("r1"), annals.Any, annals.EventData{Type: seats.PaymentConfirmed}))
	must(s.Append(ctx, seats.PaymentStream("r2"), annals.Any, annals.EventData{Type: seats.PaymentFailed}))
	run(func() bool {
		return status("r1") == process.Done && status("r2") == process.Done && status("r3") == process.Waiting
	})
	at(now.Load().Add(seats.PaymentDeadline + time.Minute)) // while no run goes
	run(func() bool { return status("r3") == process.Done })
	state, _, err := h.Load(ctx, conference)
	if err != nil {
		t.Fatal(err)
	}
	if state.Reserved != 3 || state.Reservations["r1"] != 3 || len(state.Reservations) != 1 {
		t.Errorf("after the payments: %d reserved, %v; want r1's 3 alone", state.Reserved, state.Reservations)
	}
	var cancels []string
	for ev, err := range s.ReadStream(ctx, conference, annals.ReadStreamOptions{}) {
		if err == nil && ev.Type == "ReservationCancelled" {
			cancels = append(cancels, string(ev.Data))
		}
	}
	if len(cancels) != 2 || !strings.Contains(strings.Join(cancels, " "), `"r2"`) || !strings.Contains(strings.Join(cancels, " "), `"r3"`) {
		t.Errorf("cancellations %v, want r2's and r3's once each", cancels)
	}
}
