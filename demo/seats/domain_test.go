package seats_test

import (
	"testing"

	"github.com/annals/annals/command/commandtest"
	"github.com/annals/annals/demo/seats"
)

var opened = seats.ConferenceOpened{Capacity: 10}

func TestOpen(t *testing.T) {
	commandtest.For(t, seats.Decider).Given().When(seats.Open{Capacity: 10}).Then(opened)
	commandtest.For(t, seats.Decider).Given(opened).When(seats.Open{Capacity: 10}).ThenError(seats.ErrAlreadyOpened)
	commandtest.For(t, seats.Decider).Given().When(seats.Open{Capacity: 0}).ThenError(seats.ErrInvalidCapacity)
}

func TestReserve(t *testing.T) {
	commandtest.For(t, seats.Decider).Given(opened).
		When(seats.Reserve{Reservation: "r1", Seats: 4}).
		Then(seats.SeatsReserved{Reservation: "r1", Seats: 4})
	commandtest.For(t, seats.Decider).Given().When(seats.Reserve{Reservation: "r1", Seats: 1}).ThenError(seats.ErrNotOpened)
	commandtest.For(t, seats.Decider).Given(opened).When(seats.Reserve{Reservation: "r1", Seats: 5}).ThenError(seats.ErrInvalidSeats)
	commandtest.For(t, seats.Decider).Given(opened).When(seats.Reserve{Reservation: "r1", Seats: 0}).ThenError(seats.ErrInvalidSeats)
	commandtest.For(t, seats.Decider).Given(opened, seats.SeatsReserved{Reservation: "r1", Seats: 1}).
		When(seats.Reserve{Reservation: "r1", Seats: 1}).ThenError(seats.ErrDuplicate)
	// The last seats go; one more is refused.
	full := []seats.Event{opened,
		seats.SeatsReserved{Reservation: "a", Seats: 4},
		seats.SeatsReserved{Reservation: "b", Seats: 4},
	}
	commandtest.For(t, seats.Decider).Given(full...).When(seats.Reserve{Reservation: "c", Seats: 2}).
		Then(seats.SeatsReserved{Reservation: "c", Seats: 2})
	commandtest.For(t, seats.Decider).Given(full...).When(seats.Reserve{Reservation: "c", Seats: 3}).ThenError(seats.ErrNotEnoughSeats)
	// A cancellation gives the seats back.
	commandtest.For(t, seats.Decider).Given(append(full, seats.ReservationCancelled{Reservation: "a", Seats: 4})...).
		When(seats.Reserve{Reservation: "c", Seats: 4}).
		Then(seats.SeatsReserved{Reservation: "c", Seats: 4})
}

func TestCancel(t *testing.T) {
	commandtest.For(t, seats.Decider).Given(opened, seats.SeatsReserved{Reservation: "a", Seats: 3}).
		When(seats.Cancel{Reservation: "a"}).
		Then(seats.ReservationCancelled{Reservation: "a", Seats: 3})
	commandtest.For(t, seats.Decider).Given(opened).When(seats.Cancel{Reservation: "a"}).ThenError(seats.ErrUnknownReservation)
	commandtest.For(t, seats.Decider).Given(opened, seats.SeatsReserved{Reservation: "a", Seats: 3}, seats.ReservationCancelled{Reservation: "a", Seats: 3}).
		When(seats.Cancel{Reservation: "a"}).ThenError(seats.ErrUnknownReservation)
}
