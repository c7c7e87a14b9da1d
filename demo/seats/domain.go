// Package seats is the mission's seat booking as a decider: a conference
// with a fixed number of seats, reservations of a few seats each, and
// cancellations. Its invariant, never more seats reserved than the
// capacity, holds under any number of concurrent writers because every
// decision is appended at the revision it was made on (package command).
//
// Run (demo.go) is the demo behind `go run ./examples/seats` and
// `annals demo seats`.
package seats

import (
	"errors"
	"fmt"

	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
)

// MaxSeatsPerReservation is the most seats one reservation may take.
const MaxSeatsPerReservation = 4

// Domain errors. Decide returns them as they are; they are answers, not
// failures.
var (
	ErrNotOpened          = errors.New("seats: the conference is not open for reservations")
	ErrAlreadyOpened      = errors.New("seats: the conference is already open")
	ErrNotEnoughSeats     = errors.New("seats: not enough seats left")
	ErrInvalidSeats       = fmt.Errorf("seats: a reservation takes 1 to %d seats", MaxSeatsPerReservation)
	ErrInvalidCapacity    = errors.New("seats: a conference has at least one seat")
	ErrDuplicate          = errors.New("seats: a reservation with this id exists")
	ErrUnknownReservation = errors.New("seats: no such reservation")
)

// Event is an event of a conference.
type Event interface{ isEvent() }

// ConferenceOpened opens a conference with Capacity seats.
type ConferenceOpened struct {
	Capacity int `json:"capacity"`
}

// SeatsReserved: a reservation took Seats seats.
type SeatsReserved struct {
	Reservation string `json:"reservation"`
	Seats       int    `json:"seats"`
}

// ReservationCancelled: a reservation gave its seats back.
type ReservationCancelled struct {
	Reservation string `json:"reservation"`
	Seats       int    `json:"seats"`
}

func (ConferenceOpened) isEvent()     {}
func (SeatsReserved) isEvent()        {}
func (ReservationCancelled) isEvent() {}

// Command is a command to a conference.
type Command interface{ isCommand() }

// Open opens the conference with Capacity seats.
type Open struct{ Capacity int }

// Reserve reserves Seats seats under the reservation id Reservation.
type Reserve struct {
	Reservation string
	Seats       int
}

// Cancel cancels a reservation.
type Cancel struct{ Reservation string }

func (Open) isCommand()    {}
func (Reserve) isCommand() {}
func (Cancel) isCommand()  {}

// State is a conference as decisions see it.
type State struct {
	Opened       bool           `json:"opened"`
	Capacity     int            `json:"capacity"`
	Reserved     int            `json:"reserved"`
	Reservations map[string]int `json:"reservations"` // id → seats
}

// Available is the number of seats left.
func (s State) Available() int { return s.Capacity - s.Reserved }

// Decider is the conference's domain logic.
var Decider = command.Decider[State, Command, Event]{
	Initial: func() State { return State{Reservations: map[string]int{}} },
	Evolve:  evolve,
	Decide:  decide,
}

func decide(s State, c Command) ([]Event, error) {
	switch c := c.(type) {
	case Open:
		if s.Opened {
			return nil, ErrAlreadyOpened
		}
		if c.Capacity < 1 {
			return nil, ErrInvalidCapacity
		}
		return []Event{ConferenceOpened{Capacity: c.Capacity}}, nil
	case Reserve:
		switch {
		case !s.Opened:
			return nil, ErrNotOpened
		case c.Seats < 1 || c.Seats > MaxSeatsPerReservation:
			return nil, ErrInvalidSeats
		case s.Reservations[c.Reservation] > 0:
			return nil, ErrDuplicate
		case c.Seats > s.Available():
			return nil, fmt.Errorf("%w: %d wanted, %d left", ErrNotEnoughSeats, c.Seats, s.Available())
		}
		return []Event{SeatsReserved{Reservation: c.Reservation, Seats: c.Seats}}, nil
	case Cancel:
		n, ok := s.Reservations[c.Reservation]
		if !ok {
			return nil, ErrUnknownReservation
		}
		return []Event{ReservationCancelled{Reservation: c.Reservation, Seats: n}}, nil
	}
	return nil, fmt.Errorf("seats: unknown command %T", c)
}

// evolve changes the state it is given: the handler folds each load into a
// state of its own, and Decide never sees a state that is still evolving.
func evolve(s State, e Event) State {
	if s.Reservations == nil {
		s.Reservations = map[string]int{}
	}
	switch e := e.(type) {
	case ConferenceOpened:
		s.Opened, s.Capacity = true, e.Capacity
	case SeatsReserved:
		s.Reserved += e.Seats
		s.Reservations[e.Reservation] = e.Seats
	case ReservationCancelled:
		s.Reserved -= e.Seats
		delete(s.Reservations, e.Reservation)
	}
	return s
}

// Codec names the conference's events in the store.
var Codec = codec.New[Event](codec.Options{})

func init() {
	codec.MustRegister[ConferenceOpened](Codec, "ConferenceOpened")
	codec.MustRegister[SeatsReserved](Codec, "SeatsReserved")
	codec.MustRegister[ReservationCancelled](Codec, "ReservationCancelled")
}

// Stream is the stream of conference id.
func Stream(id string) string { return "conference-" + id }
