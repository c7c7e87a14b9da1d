package seats

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/annals/annals/command"
	"github.com/google/uuid"
)

// clients is one run's clients and what they were told.
type clients struct {
	h      *command.Handler[State, Command, Event]
	stream string
	cfg    Config
	ctx    context.Context
	// over reports whether the run has ended.
	over func() bool

	accepted, acceptedSeats, rejected, cancelled, conflicts, gaveUp, commands atomic.Int64
	tickets                                                                   atomic.Int64 // reservation attempts handed out

	mu       sync.Mutex
	acked    map[string]int // reservations acknowledged (and not cancelled)
	firstErr error
	// pendingReserve (reservation → seats) and pendingCancel
	// (reservation) are the commands in flight when the run ended: they
	// may or may not have been written.
	pendingReserve map[string]int
	pendingCancel  map[string]bool
}

func (c *clients) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstErr == nil {
		c.firstErr = err
	}
}

func (c *clients) count(attempts int, err error) {
	c.commands.Add(1)
	c.conflicts.Add(int64(max(attempts-1, 0)))
	if errors.Is(err, command.ErrConflict) {
		c.gaveUp.Add(1)
	}
}

// client reserves and sometimes cancels until the run is over.
func (c *clients) client() {
	var mine []string // this client's live reservations
	for !c.over() {
		if c.cfg.Reservations > 0 && c.tickets.Add(1) > int64(c.cfg.Reservations) {
			return
		}
		id, ok := c.reserve()
		if !ok {
			return
		}
		if id != "" {
			mine = append(mine, id)
		}
		if len(mine) == 0 || rand.IntN(100) >= c.cfg.CancelPercent {
			continue
		}
		i := rand.IntN(len(mine))
		cancelled, ok := c.cancel(mine[i])
		if !ok {
			return
		}
		if cancelled {
			mine = append(mine[:i], mine[i+1:]...)
		}
	}
}

// reserve runs one reservation: the id of the reservation if accepted, and
// whether the client goes on.
func (c *clients) reserve() (string, bool) {
	id := uuid.New()
	n := 1 + rand.IntN(MaxSeatsPerReservation)
	res, err := c.h.Handle(c.ctx, c.stream, Reserve{Reservation: id.String(), Seats: n}, command.WithID(id))
	c.count(res.Attempts, err)
	switch {
	case err == nil:
		c.accepted.Add(1)
		c.acceptedSeats.Add(int64(n))
		c.mu.Lock()
		c.acked[id.String()] = n
		c.mu.Unlock()
		return id.String(), true
	case errors.Is(err, ErrNotEnoughSeats):
		c.rejected.Add(1)
		return "", true
	case errors.Is(err, command.ErrConflict):
		return "", true
	case c.over():
		// The run is over; the command's fate is the store's.
		c.mu.Lock()
		c.pendingReserve[id.String()] = n
		c.mu.Unlock()
		return "", false
	}
	c.fail(err)
	return "", false
}

// cancel cancels one of the client's reservations: whether it was, and
// whether the client goes on.
func (c *clients) cancel(victim string) (bool, bool) {
	res, err := c.h.Handle(c.ctx, c.stream, Cancel{Reservation: victim}, command.WithID(uuid.New()))
	c.count(res.Attempts, err)
	switch {
	case err == nil:
		c.cancelled.Add(1)
		c.mu.Lock()
		delete(c.acked, victim)
		c.mu.Unlock()
		return true, true
	case errors.Is(err, command.ErrConflict):
		return false, true
	case c.over():
		c.mu.Lock()
		c.pendingCancel[victim] = true
		c.mu.Unlock()
		return false, false
	}
	c.fail(err)
	return false, false
}
