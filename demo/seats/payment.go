package seats

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// The payment of a reservation, as a process manager across two
// aggregates: a conference's seats, and a payment that a provider reports
// on its own stream ("payment-<reservation>": PaymentConfirmed or
// PaymentFailed). A reservation waits PaymentDeadline for its payment;
// confirmed, it stands; failed, or not in time, its seats are released
// (a Cancel to the conference).

// PaymentDeadline is how long a reservation waits for its payment.
const PaymentDeadline = 15 * time.Minute

// PaymentStream is the stream of the payment of a reservation.
func PaymentStream(reservation string) string { return "payment-" + reservation }

// The payment provider's events.
const (
	PaymentConfirmed = "PaymentConfirmed"
	PaymentFailed    = "PaymentFailed"
)

// releaseCommand is the type of the process's command to a conference.
const releaseCommand = "ReleaseSeats"

// payment is an instance's state: its reservation, and the conference
// whose seats it holds.
type payment struct {
	Reservation string `json:"reservation"`
	Conference  string `json:"conference"`
}

// paymentAwaited, the instance's one event, records where the seats are.
type paymentAwaited payment

// Payments is the process manager of reservations' payments.
func Payments() *process.Manager[payment, paymentAwaited] {
	c := codec.New[paymentAwaited](codec.Options{})
	codec.MustRegister[paymentAwaited](c, "PaymentAwaited")
	return &process.Manager[payment, paymentAwaited]{
		Name:      "payments",
		Filter:    annals.EventTypePrefixFilter("SeatsReserved", PaymentConfirmed, PaymentFailed),
		Correlate: correlatePayment,
		Initial:   func() payment { return payment{} },
		Evolve:    func(_ payment, e paymentAwaited) payment { return payment(e) },
		Decide:    decidePayment,
		Codec:     c,
		Policy:    process.Policy{Retries: 5, RetryAfter: 10 * time.Second},
	}
}

// correlatePayment names a reservation's instance: by the reservation in
// a SeatsReserved event, by the stream of a payment's.
func correlatePayment(e annals.Event) (string, bool) {
	if e.Type == "SeatsReserved" {
		var r SeatsReserved
		return r.Reservation, json.Unmarshal(e.Data, &r) == nil && r.Reservation != ""
	}
	id, ok := strings.CutPrefix(e.Stream, "payment-")
	return id, ok && id != ""
}

func decidePayment(p payment, in process.Input) ([]paymentAwaited, process.Decision, error) {
	release := func() process.Decision {
		data, _ := json.Marshal(Cancel{Reservation: p.Reservation})
		return process.Decision{Commands: []process.Command{{Stream: p.Conference, Type: releaseCommand, Data: data}}, Cancel: []string{"payment"}, Finish: true}
	}
	switch {
	case in.Timer == "payment":
		return nil, release(), nil
	case in.Event == nil:
		return nil, process.Decision{}, nil // a timer of no use any more
	case in.Event.Type == "SeatsReserved":
		var r SeatsReserved
		if err := json.Unmarshal(in.Event.Data, &r); err != nil {
			return nil, process.Decision{}, err
		}
		return []paymentAwaited{{Reservation: r.Reservation, Conference: in.Event.Stream}},
			process.Decision{Timers: []process.Timer{{Name: "payment", At: in.Now.Add(PaymentDeadline)}}}, nil
	case p.Conference == "":
		return nil, process.Decision{}, nil // a payment for no reservation seen: nothing to do
	case in.Event.Type == PaymentConfirmed:
		return nil, process.Decision{Cancel: []string{"payment"}, Finish: true}, nil
	case in.Event.Type == PaymentFailed:
		return nil, release(), nil
	}
	return nil, process.Decision{}, nil
}

// PaymentRoutes sends the process's releases to the conferences through h.
// A reservation cancelled already (by its client) counts as released.
func PaymentRoutes(h *command.Handler[State, Command, Event]) process.Routes {
	route := process.HandlerRoute(h, func(data json.RawMessage) (Command, error) {
		var c Cancel
		return c, json.Unmarshal(data, &c)
	})
	send := route.Send
	route.Send = func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		if err := send(ctx, stream, data, key); err != nil && !errors.Is(err, ErrUnknownReservation) {
			return err
		}
		return nil
	}
	return process.Routes{releaseCommand: route}
}
