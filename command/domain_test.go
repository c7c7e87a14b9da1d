package command_test

import (
	"errors"
	"fmt"

	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
)

// The tests' domain: a show with a number of tickets, taken a few at a
// time. Its invariant: never more taken than the capacity.

type show struct {
	Open     bool `json:"open"`
	Capacity int  `json:"capacity"`
	Taken    int  `json:"taken"`
}

type (
	openShow struct{ Capacity int }
	take     struct{ N int }
	// noop decides nothing.
	noop struct{}
)

type showEvent interface{ isShowEvent() }

type showOpened struct {
	Capacity int `json:"capacity"`
}

type ticketsTaken struct {
	N int `json:"n"`
}

func (showOpened) isShowEvent()   {}
func (ticketsTaken) isShowEvent() {}

var (
	errSoldOut     = errors.New("not enough tickets left")
	errNotOpen     = errors.New("the show is not open")
	errAlreadyOpen = errors.New("the show is already open")
)

var showDecider = command.Decider[show, any, showEvent]{
	Initial: func() show { return show{} },
	Evolve: func(s show, e showEvent) show {
		switch e := e.(type) {
		case showOpened:
			s.Open, s.Capacity = true, e.Capacity
		case ticketsTaken:
			s.Taken += e.N
		}
		return s
	},
	Decide: func(s show, c any) ([]showEvent, error) {
		switch c := c.(type) {
		case openShow:
			if s.Open {
				return nil, errAlreadyOpen
			}
			return []showEvent{showOpened{Capacity: c.Capacity}}, nil
		case take:
			if !s.Open {
				return nil, errNotOpen
			}
			if s.Taken+c.N > s.Capacity {
				return nil, fmt.Errorf("%w: %d wanted, %d left", errSoldOut, c.N, s.Capacity-s.Taken)
			}
			return []showEvent{ticketsTaken{N: c.N}}, nil
		case noop:
			return nil, nil
		}
		return nil, fmt.Errorf("unknown command %T", c)
	},
}

func showCodec(opts codec.Options) *codec.Registry[showEvent] {
	r := codec.New[showEvent](opts)
	codec.MustRegister[showOpened](r, "ShowOpened")
	codec.MustRegister[ticketsTaken](r, "TicketsTaken")
	return r
}
