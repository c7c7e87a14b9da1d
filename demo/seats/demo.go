package seats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/google/uuid"
)

// Demo limits and defaults.
const (
	DefaultSeats         = 100
	DefaultClients       = 50
	DefaultDuration      = 3 * time.Second
	DefaultCancelPercent = 10
	// DefaultMaxAttempts is higher than command's default: every client
	// of the demo hammers one stream, so a command may lose many races
	// before it wins one.
	DefaultMaxAttempts = 50
	DefaultMaxBackoff  = 500 * time.Millisecond
	MaxSeats           = 1_000_000
	MaxClients         = 10_000
	MaxReservations    = 10_000_000
	MaxDuration        = time.Hour
)

// Config is one run of the demo. Zero fields take the defaults.
type Config struct {
	// Conference is the conference's id; processes that share it book
	// the same seats. Empty means a fresh random id.
	Conference string
	Seats      int // capacity
	Clients    int // concurrent clients
	// Reservations is the number of reservation attempts, over all
	// clients, after which the run ends; 0 means run for Duration.
	Reservations int
	Duration     time.Duration
	// CancelPercent is the chance that a client cancels one of its
	// reservations after a reservation; 0 means never.
	CancelPercent int
	// MaxAttempts and MaxBackoff bound the retries of each command.
	MaxAttempts int
	MaxBackoff  time.Duration
	// SnapshotEvery, if not 0, snapshots the conference every so many
	// events.
	SnapshotEvery uint64
}

func (c Config) withDefaults() (Config, error) {
	if c.Conference == "" {
		c.Conference = uuid.NewString()[:8]
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Seats, DefaultSeats)
	def(&c.Clients, DefaultClients)
	def(&c.MaxAttempts, DefaultMaxAttempts)
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Duration == 0 && c.Reservations == 0 {
		c.Duration = DefaultDuration
	}
	return c, c.Check()
}

// Check refuses a configuration out of range, taking every field as it
// is: a zero Seats, Clients or MaxAttempts, or no Duration without
// Reservations, is refused here (Run takes the defaults for them). A
// command line checks its flags with it, since a flag set to 0 is a
// mistake, not a request for the default.
func (c Config) Check() error {
	switch {
	case c.Seats < 1 || c.Seats > MaxSeats:
		return fmt.Errorf("seats: %d seats; want 1 to %d", c.Seats, MaxSeats)
	case c.Clients < 1 || c.Clients > MaxClients:
		return fmt.Errorf("seats: %d clients; want 1 to %d", c.Clients, MaxClients)
	case c.Reservations < 0 || c.Reservations > MaxReservations:
		return fmt.Errorf("seats: %d reservations; want 0 to %d", c.Reservations, MaxReservations)
	case c.Duration < 0 || c.Duration > MaxDuration:
		return fmt.Errorf("seats: duration %v; want up to %v", c.Duration, MaxDuration)
	case c.Duration == 0 && c.Reservations == 0:
		return fmt.Errorf("seats: a duration of 0 and no reservations: the run would do nothing")
	case c.CancelPercent < 0 || c.CancelPercent > 100:
		return fmt.Errorf("seats: cancel percent %d; want 0 to 100", c.CancelPercent)
	case c.MaxAttempts < 1 || c.MaxAttempts > command.MaxAttemptsLimit:
		return fmt.Errorf("seats: %d attempts; want 1 to %d", c.MaxAttempts, command.MaxAttemptsLimit)
	}
	return nil
}

// Report is what a run did, as its clients saw it.
type Report struct {
	Conference string
	// Accepted reservations and the seats they took; Rejected for lack of
	// seats; Cancelled reservations.
	Accepted, AcceptedSeats, Rejected, Cancelled int64
	// Conflicts is the number of decisions retried after losing a race;
	// GaveUp the commands that lost MaxAttempts races in a row (the
	// client is told to try again).
	Conflicts, GaveUp int64
	Commands          int64 // commands answered
	// UnacknowledgedAccepted reservations (of UnacknowledgedSeats seats)
	// and UnacknowledgedCancelled cancellations were written, the replay
	// shows, but their clients never heard back: the run ended while
	// their commands were in flight.
	UnacknowledgedAccepted, UnacknowledgedSeats, UnacknowledgedCancelled int64
	Elapsed                                                              time.Duration
	// Verification is the replay of the stream after the run.
	Verification Verification
}

// Throughput is commands answered per second.
func (r Report) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Commands) / r.Elapsed.Seconds()
}

// Run opens the conference (unless another process did), runs the clients,
// then verifies the stream. It returns an error for a failure of the
// store or a violated invariant (Verification.Err).
func Run(ctx context.Context, store annals.Store, cfg Config, out io.Writer) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	stream := Stream(cfg.Conference)
	h := &command.Handler[State, Command, Event]{
		Store: store, Decider: Decider, Codec: Codec,
		Retry: command.Retry{MaxAttempts: cfg.MaxAttempts, MaxBackoff: cfg.MaxBackoff},
	}
	if cfg.SnapshotEvery > 0 {
		h.Snapshots = &command.Snapshots[State]{Every: cfg.SnapshotEvery, Version: 1}
	}
	// Every process opens the conference with the same id: the first one
	// wins, the others find it open (the same command id: a repeat).
	openID := uuid.NewSHA1(uuid.NameSpaceURL, []byte("annals-seats-demo/"+cfg.Conference))
	res, err := h.Handle(ctx, stream, Open{Capacity: cfg.Seats}, command.WithID(openID))
	switch {
	case errors.Is(err, ErrAlreadyOpened):
		if s, _, lerr := h.Load(ctx, stream); lerr == nil && s.Capacity != cfg.Seats {
			return Report{}, fmt.Errorf("seats: conference %s is open with %d seats, not %d", cfg.Conference, s.Capacity, cfg.Seats)
		}
	case err != nil:
		return Report{}, fmt.Errorf("opening the conference: %w", err)
	case res.Repeated && res.State.Capacity != cfg.Seats:
		return Report{}, fmt.Errorf("seats: conference %s is open with %d seats, not %d", cfg.Conference, res.State.Capacity, cfg.Seats)
	}
	fmt.Fprintf(out, "conference %s: %d seats, %d clients, ", cfg.Conference, cfg.Seats, cfg.Clients)
	if cfg.Reservations > 0 {
		fmt.Fprintf(out, "%d reservation attempts\n", cfg.Reservations)
	} else {
		fmt.Fprintf(out, "for %v\n", cfg.Duration)
	}

	runCtx, over := ctx, func() bool { return ctx.Err() != nil }
	if cfg.Reservations == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
		// A call may fail on the run's deadline a moment before runCtx
		// says it is done (a client's check of the deadline races the
		// context's timer): the clock, not only Err, ends the run.
		deadline, _ := runCtx.Deadline()
		over = func() bool { return runCtx.Err() != nil || !time.Now().Before(deadline) }
	}
	c := &clients{h: h, stream: stream, cfg: cfg, ctx: runCtx, over: over,
		acked: map[string]int{}, pendingReserve: map[string]int{}, pendingCancel: map[string]bool{}}
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(c.client)
	}
	wg.Wait()
	r := Report{Conference: cfg.Conference, Elapsed: time.Since(start)}
	r.Accepted, r.AcceptedSeats, r.Rejected, r.Cancelled = c.accepted.Load(), c.acceptedSeats.Load(), c.rejected.Load(), c.cancelled.Load()
	r.Conflicts, r.GaveUp, r.Commands = c.conflicts.Load(), c.gaveUp.Load(), c.commands.Load()
	if c.firstErr != nil {
		return r, c.firstErr
	}
	r.print(out, cfg)

	// The verification gets a context of its own: a run that ended on
	// its deadline still verifies.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	v, err := Verify(vctx, store, cfg.Conference, c.acked)
	r.Verification = v
	if err != nil {
		return r, err
	}
	r.settle(v, c.pendingReserve, c.pendingCancel)
	if r.UnacknowledgedAccepted+r.UnacknowledgedCancelled > 0 {
		fmt.Fprintf(out, "%-32s%d reservations (%d seats), %d cancellations (the run ended before their answers)\n",
			"written, not acknowledged:", r.UnacknowledgedAccepted, r.UnacknowledgedSeats, r.UnacknowledgedCancelled)
	}
	fmt.Fprintf(out, "verified: %s\n", v)
	return r, v.Err
}

// settle counts the commands the run ended in the middle of (their
// clients never heard back) that the replay found written.
func (r *Report) settle(v Verification, reserve map[string]int, cancel map[string]bool) {
	for id, n := range reserve {
		if v.made[id] {
			r.UnacknowledgedAccepted++
			r.UnacknowledgedSeats += int64(n)
		}
	}
	for id := range cancel {
		if v.cancelled[id] {
			r.UnacknowledgedCancelled++
		}
	}
}

func (r *Report) print(out io.Writer, cfg Config) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(out, "%-32s"+format+"\n", append([]any{label}, args...)...)
	}
	line("reservations accepted:", "%d (%d seats)", r.Accepted, r.AcceptedSeats)
	line("rejected, not enough seats:", "%d", r.Rejected)
	line("cancellations:", "%d", r.Cancelled)
	line("conflicts retried:", "%d", r.Conflicts)
	line(fmt.Sprintf("gave up after %d attempts:", cfg.MaxAttempts), "%d", r.GaveUp)
	line("throughput:", "%.0f commands/s (%d commands in %v)", r.Throughput(), r.Commands, r.Elapsed.Round(time.Millisecond))
}
