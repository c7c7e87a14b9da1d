package seats

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals"
)

// ErrOverbooked matches every violation Verify finds.
var ErrOverbooked = errors.New("seats: the invariant does not hold")

// Verification is a replay of a conference's stream.
type Verification struct {
	Stream   string
	Events   int
	Capacity int
	// MaxReserved is the most seats reserved at any revision; Reserved at
	// the last one.
	MaxReserved, Reserved int
	// Err describes the first violation found (wraps ErrOverbooked), nil
	// if none.
	Err error

	made, cancelled map[string]bool // reservations made, and cancelled
}

func (v Verification) String() string {
	s := fmt.Sprintf("replayed %d events of %s: capacity %d, at most %d reserved at any revision, %d reserved now",
		v.Events, v.Stream, v.Capacity, v.MaxReserved, v.Reserved)
	if v.Err != nil {
		return s + ": VIOLATED: " + v.Err.Error()
	}
	return s + ": never more than the capacity"
}

// Verify replays conference's stream straight from the store, without the
// decider (so that a bug there cannot hide itself), and checks at every
// revision that 0 ≤ reserved ≤ capacity, that each reservation is made
// once and cancelled at most once, and that every reservation in acked
// (acknowledged to a client and not cancelled by it) is in the stream.
// Other processes may be appending meanwhile: the replay checks the prefix
// it reads.
func Verify(ctx context.Context, store annals.Store, conference string, acked map[string]int) (Verification, error) {
	v := Verification{Stream: Stream(conference)}
	violate := func(format string, args ...any) {
		if v.Err == nil {
			v.Err = fmt.Errorf("%w: "+format, append([]any{ErrOverbooked}, args...)...)
		}
	}
	live := map[string]int{} // reservation → seats, not cancelled
	v.made, v.cancelled = map[string]bool{}, map[string]bool{}
	ever := v.made
	seen := map[string]bool{} // acked reservations found
	for ev, err := range store.ReadStream(ctx, v.Stream, annals.ReadStreamOptions{}) {
		if err != nil {
			return v, fmt.Errorf("replaying %s: %w", v.Stream, err)
		}
		e, _, err := Codec.Decode(ev)
		if err != nil {
			return v, err
		}
		v.Events++
		switch e := e.(type) {
		case ConferenceOpened:
			if v.Capacity != 0 {
				violate("the conference was opened twice (revision %d)", ev.Revision)
			}
			v.Capacity = e.Capacity
		case SeatsReserved:
			if ever[e.Reservation] {
				violate("reservation %s made twice (revision %d)", e.Reservation, ev.Revision)
			}
			ever[e.Reservation] = true
			live[e.Reservation] = e.Seats
			v.Reserved += e.Seats
			if n, ok := acked[e.Reservation]; ok {
				seen[e.Reservation] = true
				if n != e.Seats {
					violate("reservation %s acknowledged with %d seats, recorded with %d", e.Reservation, n, e.Seats)
				}
			}
		case ReservationCancelled:
			n, ok := live[e.Reservation]
			if !ok || n != e.Seats {
				violate("revision %d cancels reservation %s, which holds no %d seats", ev.Revision, e.Reservation, e.Seats)
			}
			delete(live, e.Reservation)
			v.cancelled[e.Reservation] = true
			v.Reserved -= e.Seats
		}
		v.MaxReserved = max(v.MaxReserved, v.Reserved)
		if v.Reserved > v.Capacity || v.Reserved < 0 {
			violate("%d seats reserved at revision %d, capacity %d", v.Reserved, ev.Revision, v.Capacity)
		}
	}
	if len(seen) != len(acked) {
		violate("%d acknowledged reservations are not in the stream", len(acked)-len(seen))
	}
	return v, nil
}
