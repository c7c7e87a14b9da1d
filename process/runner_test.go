package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// The aggregates: a user's box of done items, which a purge empties and
// a restore fills again. A box named "box-bad" refuses to be purged.

type boxEvent interface{ isBoxEvent() }

type (
	itemsDone  struct{ N int }
	boxPurged  struct{ N int }
	boxRestore struct{ N int }
)

func (itemsDone) isBoxEvent()  {}
func (boxPurged) isBoxEvent()  {}
func (boxRestore) isBoxEvent() {}

type box struct{ Done, Purged int }

type boxCommand struct {
	Op string `json:"op"` // "done", "purge", "restore"
	N  int    `json:"n,omitempty"`
}

var errBad = errors.New("this box refuses to be purged")

func boxHandler(s annals.Store) *command.Handler[box, boxCommand, boxEvent] {
	c := codec.New[boxEvent](codec.Options{})
	codec.MustRegister[itemsDone](c, "ItemsDone")
	codec.MustRegister[boxPurged](c, "BoxPurged")
	codec.MustRegister[boxRestore](c, "BoxRestored")
	return &command.Handler[box, boxCommand, boxEvent]{Store: s, Codec: c, Decider: command.Decider[box, boxCommand, boxEvent]{
		Initial: func() box { return box{} },
		Evolve: func(b box, e boxEvent) box {
			switch e := e.(type) {
			case itemsDone:
				b.Done += e.N
			case boxPurged:
				b.Done, b.Purged = b.Done-e.N, b.Purged+e.N
			case boxRestore:
				b.Done, b.Purged = b.Done+e.N, b.Purged-e.N
			}
			return b
		},
		Decide: func(b box, c boxCommand) ([]boxEvent, error) {
			switch c.Op {
			case "done":
				return []boxEvent{itemsDone{c.N}}, nil
			case "purge":
				// Always an event, even of nothing to purge: a purge
				// applied twice shows as two.
				return []boxEvent{boxPurged{b.Done}}, nil
			case "restore":
				if b.Purged == 0 {
					return nil, nil
				}
				return []boxEvent{boxRestore{b.Purged}}, nil
			}
			return nil, fmt.Errorf("unknown op %q", c.Op)
		},
	}}
}

// The process: a purge request names boxes; the instance purges each, and
// restores them all if one refuses.

type purgeRequested struct {
	Request string   `json:"request"`
	Boxes   []string `json:"boxes"`
}

type purgeEvent interface{ isPurgeEvent() }

type purgeStarted struct{ Boxes int }

func (purgeStarted) isPurgeEvent() {}

type purge struct{ Boxes int }

func purgeManager(policy process.Policy) *process.Manager[purge, purgeEvent] {
	c := codec.New[purgeEvent](codec.Options{})
	codec.MustRegister[purgeStarted](c, "PurgeStarted")
	return &process.Manager[purge, purgeEvent]{
		Name:   "purge",
		Filter: annals.EventTypePrefixFilter("PurgeRequested"),
		Correlate: func(e annals.Event) (string, bool) {
			var r purgeRequested
			return r.Request, json.Unmarshal(e.Data, &r) == nil && r.Request != ""
		},
		Initial: func() purge { return purge{} },
		Evolve:  func(p purge, e purgeEvent) purge { return purge{Boxes: e.(purgeStarted).Boxes} },
		Decide: func(p purge, in process.Input) ([]purgeEvent, process.Decision, error) {
			var r purgeRequested
			if err := json.Unmarshal(in.Event.Data, &r); err != nil {
				return nil, process.Decision{}, err
			}
			var d process.Decision
			for _, b := range r.Boxes {
				d.Commands = append(d.Commands, process.Command{Stream: b, Type: "box", Data: json.RawMessage(`{"op":"purge"}`),
					Undo: &process.Command{Stream: b, Type: "box", Data: json.RawMessage(`{"op":"restore"}`)}})
			}
			d.Finish = true
			return []purgeEvent{purgeStarted{len(r.Boxes)}}, d, nil
		},
		Codec:  c,
		Policy: policy,
	}
}

// refusing wraps the box route: a purge of box-bad is refused.
func routes(h *command.Handler[box, boxCommand, boxEvent], sent *atomic.Int64) process.Routes {
	route := process.HandlerRoute(h, func(data json.RawMessage) (boxCommand, error) {
		var c boxCommand
		return c, json.Unmarshal(data, &c)
	})
	send := route.Send
	route.Send = func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		sent.Add(1)
		if stream == "box-bad" && strings.Contains(string(data), "purge") {
			return fmt.Errorf("%w: %w", process.ErrRefused, errBad)
		}
		return send(ctx, stream, data, key)
	}
	return process.Routes{"box": route}
}

func fill(t *testing.T, h *command.Handler[box, boxCommand, boxEvent], boxes []string) {
	t.Helper()
	for _, b := range boxes {
		if _, err := h.Handle(context.Background(), b, boxCommand{Op: "done", N: 3}); err != nil {
			t.Fatal(err)
		}
	}
}

func request(t *testing.T, s annals.Store, id string, boxes []string) {
	t.Helper()
	data, _ := json.Marshal(purgeRequested{Request: id, Boxes: boxes})
	if _, err := s.Append(context.Background(), "admin-1", annals.Any, annals.EventData{Type: "PurgeRequested", Data: data}); err != nil {
		t.Fatal(err)
	}
}

// finished waits until the manager's stream records the instance's end.
func finished(t *testing.T, s annals.Store, id string, runErr <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang guard
	for time.Now().Before(deadline) {
		for ev, err := range s.ReadStream(context.Background(), "process.purge", annals.ReadStreamOptions{}) {
			if err == nil && strings.Contains(string(ev.Data), `"Finished","id":"`+id+`"`) {
				return
			}
		}
		select {
		case err := <-runErr:
			t.Fatalf("the run ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("instance %s never finished", id)
}

func start(t *testing.T, m *process.Manager[purge, purgeEvent], s annals.Store, d process.Dispatcher) (stop func(), errs <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- m.Run(ctx, s, d, process.Options{}) }()
	return func() {
		cancel()
		if err := <-ch; !errors.Is(err, context.Canceled) {
			t.Errorf("the run: %v", err)
		}
	}, ch
}

// TestPurge: every box purged once, at most InFlight at a time, and the
// instance done.
func TestPurge(t *testing.T) {
	s := memory.New(memory.Options{})
	h := boxHandler(s)
	boxes := make([]string, 20)
	for i := range boxes {
		boxes[i] = fmt.Sprintf("box-%d", i)
	}
	fill(t, h, boxes)
	var sent atomic.Int64
	stop, errs := start(t, purgeManager(process.Policy{InFlight: 4}), s, routes(h, &sent))
	defer stop()
	request(t, s, "r1", boxes)
	finished(t, s, "r1", errs)
	for _, b := range boxes {
		if got := teststores.Types(t, s, b); got != "ItemsDone BoxPurged" {
			t.Errorf("%s: %s", b, got)
		}
	}
	if got := teststores.Types(t, s, "process.purge-r1"); !strings.HasPrefix(got, "PurgeStarted process.Decided process.StepDone") || !strings.HasSuffix(got, "process.Done") {
		t.Errorf("the instance's stream: %s", got)
	}
	if sent.Load() != int64(len(boxes)) {
		t.Errorf("%d commands sent for %d boxes", sent.Load(), len(boxes))
	}
}

// TestCompensate: the refusal of one box undoes the purges done before
// it, last first, and fails the instance with the box's error.
func TestCompensate(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) { testCompensate(t, kind) })
	}
}

func testCompensate(t *testing.T, kind string) {
	s := teststores.Open(t, kind)
	h := boxHandler(s)
	boxes := []string{"box-a", "box-b", "box-bad", "box-c"}
	fill(t, h, boxes)
	var sent atomic.Int64
	stop, errs := start(t, purgeManager(process.Policy{InFlight: 1, Retries: 2}), s, routes(h, &sent))
	defer stop()
	request(t, s, "r2", boxes)
	finished(t, s, "r2", errs)
	for b, want := range map[string]string{"box-a": "ItemsDone BoxPurged BoxRestored", "box-b": "ItemsDone BoxPurged BoxRestored",
		"box-bad": "ItemsDone", "box-c": "ItemsDone"} {
		if got := teststores.Types(t, s, b); got != want {
			t.Errorf("%s: %s, want %s", b, got, want)
		}
	}
	got := teststores.Types(t, s, "process.purge-r2")
	if !strings.HasSuffix(got, "process.Compensating process.StepAbandoned process.StepDone process.StepDone process.Failed") {
		t.Errorf("the instance's stream: %s", got)
	}
	// One send per box purged or refused (a refusal is not retried), one
	// probe-free undo per purge done.
	if sent.Load() != 5 {
		t.Errorf("%d sends, want 5 (3 purges, 2 restores)", sent.Load())
	}
}

// TestRestart: a run stopped while its commands are in flight, and run
// again, purges every box once.
func TestRestart(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) { testRestart(t, kind) })
	}
}

func testRestart(t *testing.T, kind string) {
	s := teststores.Open(t, kind)
	h := boxHandler(s)
	boxes := make([]string, 50)
	for i := range boxes {
		boxes[i] = fmt.Sprintf("box-%d", i)
	}
	fill(t, h, boxes)
	var sent atomic.Int64
	m := purgeManager(process.Policy{InFlight: 8})
	request(t, s, "r3", boxes)
	for round := 0; ; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		d := routes(h, &sent)
		route := d["box"]
		inner := route.Send
		var inRound atomic.Int64
		route.Send = func(c context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
			if inRound.Add(1) > 3 {
				time.Sleep(time.Millisecond) // commands in flight when the run stops
			}
			return inner(c, stream, data, key)
		}
		d["box"] = route
		start := lastRevision(s, "process.purge-r3")
		go func() { // stop the run once it made progress, or is done
			for ctx.Err() == nil && !instanceEnded(s, "process.purge-r3") && lastRevision(s, "process.purge-r3") < start+3 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		err := m.Run(ctx, s, d, process.Options{})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: %v", round, err)
		}
		if instanceEnded(s, "process.purge-r3") {
			t.Logf("done after %d restarts", round)
			if round < 1 {
				t.Errorf("done in the first run: it was never stopped in the middle")
			}
			break
		}
		if round > 100 {
			t.Fatal("never done")
		}
	}
	for _, b := range boxes {
		if got := teststores.Types(t, s, b); got != "ItemsDone BoxPurged" {
			t.Errorf("%s: %s", b, got)
		}
	}
}

// The seats' process: a reservation waits 15 minutes for its payment,
// then releases the seats.

type reservationEvent struct{}

func (reservationEvent) isPurgeEvent() {}

func seatsManager() *process.Manager[purge, purgeEvent] {
	c := codec.New[purgeEvent](codec.Options{})
	return &process.Manager[purge, purgeEvent]{
		Name:      "seats",
		Filter:    annals.StreamPrefixFilter("reservation-"),
		Correlate: func(e annals.Event) (string, bool) { return strings.TrimPrefix(e.Stream, "reservation-"), true },
		Initial:   func() purge { return purge{} },
		Evolve:    func(p purge, _ purgeEvent) purge { return p },
		Decide: func(p purge, in process.Input) ([]purgeEvent, process.Decision, error) {
			switch {
			case in.Timer == "payment":
				return nil, process.Decision{Commands: []process.Command{{Stream: "show-1", Type: "release"}}, Finish: true}, nil
			case in.Event.Type == "SeatsReserved":
				return nil, process.Decision{Timers: []process.Timer{{Name: "payment", At: in.Now.Add(15 * time.Minute)}}}, nil
			case in.Event.Type == "PaymentConfirmed":
				return nil, process.Decision{Cancel: []string{"payment"}, Commands: []process.Command{{Stream: "show-1", Type: "confirm"}}, Finish: true}, nil
			}
			return nil, process.Decision{}, nil
		},
		Codec: c,
	}
}

// TestDeadlineWhileStopped: a deadline that passes while no run is going
// fires when the next run starts, once.
func TestDeadlineWhileStopped(t *testing.T) {
	s := memory.New(memory.Options{})
	var now atomic.Pointer[time.Time]
	at := func(t time.Time) { now.Store(&t) }
	at(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	var released, confirmed atomic.Int64
	count := func(n *atomic.Int64) process.Route {
		return process.Route{
			Send:  func(context.Context, string, json.RawMessage, uuid.UUID) error { n.Add(1); return nil },
			Taken: func(context.Context, string, uuid.UUID) (bool, error) { return false, nil },
		}
	}
	d := process.Routes{"release": count(&released), "confirm": count(&confirmed)}
	m := seatsManager()
	runFor := func(guard time.Duration, until func() bool) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx, s, d, process.Options{Now: func() time.Time { return *now.Load() }}) }()
		deadline := time.Now().Add(guard)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // room for a second firing, if there were one
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("the run: %v", err)
		}
	}
	for _, r := range []string{"reservation-a", "reservation-b"} {
		if _, err := s.Append(context.Background(), r, annals.Any, annals.EventData{Type: "SeatsReserved"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Append(context.Background(), "reservation-b", annals.Any, annals.EventData{Type: "PaymentConfirmed"})
	runFor(10*time.Second, func() bool {
		return instanceEnded(s, "process.seats-b") && strings.Contains(teststores.Types(t, s, "process.seats-a"), "Decided")
	})
	if released.Load() != 0 || confirmed.Load() != 1 {
		t.Fatalf("before the deadline: %d released, %d confirmed", released.Load(), confirmed.Load())
	}
	at(now.Load().Add(20 * time.Minute)) // the deadline passes while stopped
	runFor(10*time.Second, func() bool { return instanceEnded(s, "process.seats-a") })
	runFor(200*time.Millisecond, func() bool { return false }) // a third run fires nothing again
	if released.Load() != 1 || confirmed.Load() != 1 {
		t.Fatalf("after the deadline and two restarts: %d released, %d confirmed; want 1 and 1", released.Load(), confirmed.Load())
	}
}

// lastRevision is the revision of a stream's last event, -1 if none.
func lastRevision(s annals.Store, stream string) int {
	for ev, err := range s.ReadStream(context.Background(), stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if err == nil {
			return int(ev.Revision)
		}
	}
	return -1
}

// TestInspect: the status of a manager and of its instances, read from
// the store beside a run: a failed instance with its error and history,
// one done, one waiting for its timer.
func TestInspect(t *testing.T) {
	s := memory.New(memory.Options{})
	h := boxHandler(s)
	fill(t, h, []string{"box-a", "box-bad"})
	var sent atomic.Int64
	stop, errs := start(t, purgeManager(process.Policy{InFlight: 1}), s, routes(h, &sent))
	request(t, s, "ok", []string{"box-a"})
	request(t, s, "ko", []string{"box-a", "box-bad"})
	finished(t, s, "ok", errs)
	finished(t, s, "ko", errs)
	stop()
	rep, err := process.Inspect(context.Background(), s, "purge")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 2 || rep.Finished != 2 || len(rep.Active) != 0 || len(rep.Failed) != 1 ||
		rep.Failed[0].ID != "ko" || !strings.Contains(rep.Failed[0].Error, "refuses") || rep.Checkpoint != 0 {
		t.Fatalf("report %+v", rep)
	}
	st, history, err := process.InspectInstance(context.Background(), s, "purge", "ko")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != process.Failed || st.Steps != 2 || st.Undone != 1 || st.Abandoned != 1 || !strings.Contains(st.Error, "box-bad") {
		t.Fatalf("status %+v", st)
	}
	var kinds []string
	for _, e := range history {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "Decided StepDone Compensating StepDone Failed" {
		t.Fatalf("history %s", got)
	}
	if _, _, err := process.InspectInstance(context.Background(), s, "purge", "nope"); !errors.Is(err, process.ErrNoInstance) {
		t.Fatalf("no instance: %v", err)
	}

	seats := seatsManager()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- seats.Run(ctx, s, process.Routes{}, process.Options{}) }()
	s.Append(context.Background(), "reservation-w", annals.Any, annals.EventData{Type: "SeatsReserved"})
	for !strings.Contains(teststores.Types(t, s, "process.seats-w"), "Decided") {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	rep, err = process.Inspect(context.Background(), s, "seats")
	if err != nil || len(rep.Active) != 1 || rep.Active[0].Status != process.Waiting || len(rep.Active[0].Timers) != 1 {
		t.Fatalf("waiting: %+v, %v", rep, err)
	}
}

// TestRetryAndAbandon: an operator retries a failed instance once its
// cause is fixed (a box undone is purged again under new keys), and
// abandons one waiting; a restart takes neither again.
func TestRetryAndAbandon(t *testing.T) {
	for _, kind := range []string{"memory", "embedded"} {
		t.Run(kind, func(t *testing.T) { retryAndAbandon(t, kind) })
	}
}

func retryAndAbandon(t *testing.T, kind string) {
	ctx := context.Background()
	s := teststores.Open(t, kind)
	h := boxHandler(s)
	boxes := []string{"box-a", "box-bad", "box-c"}
	fill(t, h, boxes)
	var sent atomic.Int64
	var fixed atomic.Bool
	d := routes(h, &sent)
	plain := process.HandlerRoute(h, func(data json.RawMessage) (boxCommand, error) {
		var c boxCommand
		return c, json.Unmarshal(data, &c)
	})
	refusing := d["box"].Send
	d["box"] = process.Route{Taken: plain.Taken, Send: func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		if fixed.Load() {
			return plain.Send(ctx, stream, data, key)
		}
		return refusing(ctx, stream, data, key)
	}}
	m := purgeManager(process.Policy{InFlight: 1})
	stop, errs := start(t, m, s, d)
	request(t, s, "x", boxes)
	finished(t, s, "x", errs)
	if err := process.Retry(ctx, s, "purge", "nope"); !errors.Is(err, process.ErrNoInstance) {
		t.Fatalf("retry of no instance: %v", err)
	}
	fixed.Store(true)
	if err := process.Retry(ctx, s, "purge", "x"); err != nil {
		t.Fatal(err)
	}
	for !strings.HasSuffix(teststores.Types(t, s, "process.purge-x"), "process.Done") {
		time.Sleep(time.Millisecond)
	}
	stop()
	want := map[string]string{"box-a": "ItemsDone BoxPurged BoxRestored BoxPurged", "box-bad": "ItemsDone BoxPurged", "box-c": "ItemsDone BoxPurged"}
	check := func(when string) {
		t.Helper()
		for b, w := range want {
			if got := teststores.Types(t, s, b); got != w {
				t.Errorf("%s, %s: %s, want %s", when, b, got, w)
			}
		}
	}
	check("after the retry")
	if err := process.Retry(ctx, s, "purge", "x"); !errors.Is(err, process.ErrNotApplicable) {
		t.Fatalf("retry of a done instance: %v", err)
	}
	stop, _ = start(t, m, s, d) // a restart takes the retry no more
	time.Sleep(50 * time.Millisecond)
	stop()
	check("after a restart")
	if rep, err := process.Inspect(ctx, s, "purge"); err != nil || len(rep.Failed) != 0 || len(rep.Active) != 0 {
		t.Fatalf("report after the retry: %+v, %v", rep, err)
	}

	seats := seatsManager()
	stopSeats, _ := start(t, seats, s, process.Routes{})
	s.Append(ctx, "reservation-w", annals.Any, annals.EventData{Type: "SeatsReserved"})
	for !strings.Contains(teststores.Types(t, s, "process.seats-w"), "Decided") {
		time.Sleep(time.Millisecond)
	}
	if err := process.Abandon(ctx, s, "seats", "w", "the show was cancelled"); err != nil {
		t.Fatal(err)
	}
	rep, err := process.Inspect(ctx, s, "seats")
	for deadline := time.Now().Add(10 * time.Second); err == nil && rep.Finished == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		rep, err = process.Inspect(ctx, s, "seats")
	}
	if err != nil || len(rep.Failed) != 1 || rep.Failed[0].Error != "the show was cancelled" || len(rep.Active) != 0 {
		t.Fatalf("after the abandon: %+v, %v", rep, err)
	}
	if err := process.Abandon(ctx, s, "seats", "w", ""); err != nil {
		t.Fatal(err)
	}
	for {
		if rep, _ := process.Inspect(ctx, s, "seats"); len(rep.Failed) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	stopSeats()
}
