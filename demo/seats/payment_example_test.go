package seats_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/demo/seats"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/process"
)

// Reserve seats, await the payment, confirm or release: the payment of
// r1 is confirmed, r2's fails, and r3's deadline passes (the clock is the
// example's own, moved 16 minutes on while no run goes; the next run
// fires the deadline).
func ExamplePayments() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	h := &command.Handler[seats.State, seats.Command, seats.Event]{Store: store, Decider: seats.Decider, Codec: seats.Codec}
	conference := seats.Stream("c1")
	h.Handle(ctx, conference, seats.Open{Capacity: 10})
	for _, r := range []string{"r1", "r2", "r3"} {
		h.Handle(ctx, conference, seats.Reserve{Reservation: r, Seats: 2})
	}
	store.Append(ctx, seats.PaymentStream("r1"), annals.Any, annals.EventData{Type: seats.PaymentConfirmed})
	store.Append(ctx, seats.PaymentStream("r2"), annals.Any, annals.EventData{Type: seats.PaymentFailed})

	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	status := func(id string) process.Status {
		st, _, _ := process.InspectInstance(ctx, store, "payments", id)
		return st.Status
	}
	// run runs the manager until until holds.
	run := func(until func() bool) {
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- seats.Payments().Run(runCtx, store, seats.PaymentRoutes(h), process.Options{Now: func() time.Time { return *now.Load() }})
		}()
		for !until() {
			time.Sleep(time.Millisecond)
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			fmt.Println(err)
		}
	}
	run(func() bool {
		return status("r1") == process.Done && status("r2") == process.Done && status("r3") == process.Waiting
	})
	later := start.Add(seats.PaymentDeadline + time.Minute) // while no run goes
	now.Store(&later)
	run(func() bool { return status("r3") == process.Done })
	state, _, _ := h.Load(ctx, conference)
	fmt.Println("reserved:", state.Reserved, state.Reservations)
	// Output:
	// reserved: 2 map[r1:2]
}
