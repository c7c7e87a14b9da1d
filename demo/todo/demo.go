package todo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// The purge demo: users' lists seeded with todos, the even ones
// completed; one PurgeRequested for every user; the purges manager sends
// the command to each list, at most InFlight at a time; then every list is
// replayed to check it was purged once, of exactly its completed todos.

// Demo limits and defaults.
const (
	DefaultUsers    = 1000
	DefaultTodos    = 10
	DefaultInFlight = 8
	// MaxUsers keeps the request (every user's name in one event) and the
	// decision (one command per user) within their limits.
	MaxUsers = process.MaxCommandsPerDecision
	// seedWorkers seed the lists side by side, one append per list.
	seedWorkers = 8
	// pollInterval is how often the demo looks whether the purge ended.
	pollInterval = 20 * time.Millisecond
)

// PurgeConfig is one run of the demo. Zero fields take the defaults.
type PurgeConfig struct {
	Users    int // lists to purge
	Todos    int // todos per list, 1 to MaxTodos; the even ones completed
	InFlight int // commands in flight at once, 1 to process.MaxInFlight
	// Run names the run's users and its request; empty means a fresh
	// random id, so runs on one store do not meet.
	Run string
}

// Check refuses a configuration out of range, taking every field as it is.
func (c PurgeConfig) Check() error {
	switch {
	case c.Users < 1 || c.Users > MaxUsers:
		return fmt.Errorf("todo: users must be 1 to %d", MaxUsers)
	case c.Todos < 1 || c.Todos > MaxTodos:
		return fmt.Errorf("todo: todos must be 1 to %d", MaxTodos)
	case c.InFlight < 1 || c.InFlight > process.MaxInFlight:
		return fmt.Errorf("todo: in-flight must be 1 to %d", process.MaxInFlight)
	}
	return nil
}

func (c PurgeConfig) withDefaults() (PurgeConfig, error) {
	if c.Run == "" {
		c.Run = uuid.NewString()[:8]
	}
	for _, f := range []struct {
		v *int
		d int
	}{{&c.Users, DefaultUsers}, {&c.Todos, DefaultTodos}, {&c.InFlight, DefaultInFlight}} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	return c, c.Check()
}

// Users names the run's users.
func (c PurgeConfig) users() []string {
	names := make([]string, c.Users)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", c.Run, i)
	}
	return names
}

// PurgeReport is what a run of the demo did.
type PurgeReport struct {
	Users, Todos int
	Completed    int // todos completed at the request, over every list
	Purged       int // todos purged, over every list
	MostInFlight int64
	Seed, Purge  time.Duration
}

// RunPurge runs the demo on store and writes its report to out. It fails
// if the replay finds a list not purged exactly once, of exactly its
// completed todos.
func RunPurge(ctx context.Context, store annals.Store, cfg PurgeConfig, out io.Writer) (PurgeReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return PurgeReport{}, err
	}
	rep := PurgeReport{Users: cfg.Users, Todos: cfg.Users * cfg.Todos, Completed: cfg.Users * ((cfg.Todos + 1) / 2)}
	users := cfg.users()
	began := time.Now()
	if err := Seed(ctx, store, users, cfg.Todos); err != nil {
		return rep, err
	}
	rep.Seed = time.Since(began)
	fmt.Fprintf(out, "seeded %d lists of %d todos (%d completed) in %v\n", cfg.Users, cfg.Todos, rep.Completed, rep.Seed.Round(time.Millisecond))
	began = time.Now()
	if rep.MostInFlight, err = purge(ctx, store, cfg, users); err != nil {
		return rep, err
	}
	rep.Purge = time.Since(began)
	for _, user := range users {
		n, late, err := VerifyPurged(ctx, store, user, cfg.Todos)
		if err == nil && late > 0 {
			err = fmt.Errorf("todo: %s: %d todos completed and not purged", user, late)
		}
		if err != nil {
			return rep, err
		}
		rep.Purged += n
	}
	fmt.Fprintf(out, "purged %d lists in %v (%.0f lists/s), at most %d commands in flight (limit %d)\n",
		cfg.Users, rep.Purge.Round(time.Millisecond), float64(cfg.Users)/rep.Purge.Seconds(), rep.MostInFlight, cfg.InFlight)
	fmt.Fprintf(out, "replayed every list: each purged once, %d todos purged of %d completed, none left completed\n", rep.Purged, rep.Completed)
	return rep, nil
}

// purge runs the purges manager until the run's request is done, and
// returns the most commands it had in flight at once.
func purge(ctx context.Context, store annals.Store, cfg PurgeConfig, users []string) (int64, error) {
	h := &command.Handler[List, Command, Event]{Store: store, Codec: Codec, Decider: Decider}
	routes := PurgeRoutes(h)
	var now, most atomic.Int64
	route := routes[PurgeCommand]
	send := route.Send
	route.Send = func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return send(ctx, stream, data, key)
	}
	routes[PurgeCommand] = route
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Purges(cfg.InFlight).Run(runCtx, store, routes, process.Options{}) }()
	ended, err := awaitPurge(ctx, store, cfg.Run, users, done)
	// The run's writes and sends in flight end before the store is
	// closed under them.
	stop()
	if !ended {
		if rerr := <-done; err == nil && !errors.Is(rerr, context.Canceled) {
			err = fmt.Errorf("todo: the purge's run ended: %w", rerr)
		}
	}
	return most.Load(), err
}

// awaitPurge requests the purge and waits until its instance is done or
// failed, or the run ended (ended: its error was taken from done).
func awaitPurge(ctx context.Context, store annals.Store, request string, users []string, done <-chan error) (ended bool, err error) {
	if err := Request(ctx, store, request, users); err != nil {
		return false, err
	}
	for {
		st, _, err := process.InspectInstance(ctx, store, "purges", request)
		switch {
		case err == nil && st.Status == process.Done:
			return false, nil
		case err == nil && st.Status == process.Failed:
			return false, fmt.Errorf("todo: the purge failed: %s", st.Error)
		case err != nil && !errors.Is(err, process.ErrNoInstance):
			return false, err
		}
		select {
		case err := <-done:
			return true, fmt.Errorf("todo: the purge's run ended: %w", err)
		case <-time.After(pollInterval):
		}
	}
}

// Request appends the PurgeRequested of request for users.
func Request(ctx context.Context, store annals.Store, request string, users []string) error {
	data, err := json.Marshal(PurgeRequested{Request: request, Users: users})
	if err != nil {
		return err
	}
	_, err = store.Append(ctx, "purge-requests", annals.Any, annals.EventData{Type: "PurgeRequested", Data: data})
	return err
}

// Seed gives each user a new list of n todos, the even ones completed, in
// one append per list.
func Seed(ctx context.Context, store annals.Store, users []string, n int) error {
	var events []annals.EventData
	for i := range n {
		for _, e := range []Event{TodoAdded{ID: fmt.Sprint(i), Title: "todo"}, TodoCompleted{ID: fmt.Sprint(i)}} {
			if _, completed := e.(TodoCompleted); completed && i%2 == 1 {
				continue
			}
			d, err := Codec.Encode(e)
			if err != nil {
				return err
			}
			events = append(events, d)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, seedWorkers)
	for w := range seedWorkers {
		wg.Go(func() {
			for u := w; u < len(users) && errs[w] == nil; u += seedWorkers {
				_, errs[w] = store.Append(ctx, Stream(users[u]), annals.NoStream, events...)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// VerifyPurged replays a user's list of n seeded todos, and returns the
// todos purged and those left completed (completed after the purge): it
// fails unless the list holds one purge, of exactly the even todos.
func VerifyPurged(ctx context.Context, store annals.Store, user string, n int) (purged, late int, err error) {
	var purges [][]string
	list := Decider.Initial()
	for ev, err := range store.ReadStream(ctx, Stream(user), annals.ReadStreamOptions{}) {
		if err != nil {
			return 0, 0, err
		}
		e, _, err := Codec.Decode(ev)
		if err != nil {
			return 0, 0, err
		}
		if p, ok := e.(CompletedTodosPurged); ok {
			purges = append(purges, p.IDs)
		}
		list = Decider.Evolve(list, e)
	}
	var want []string
	for i := 0; i < n; i += 2 {
		want = append(want, fmt.Sprint(i))
	}
	if len(purges) != 1 || !slices.Equal(purges[0], want) || len(list.Todos) != n-len(want) {
		return 0, 0, fmt.Errorf("todo: %s: purges %v and %d todos left, want one purge of %v and %d left", user, purges, len(list.Todos), want, n-len(want))
	}
	for _, t := range list.Todos {
		if t.Completed {
			late++
		}
	}
	return len(want), late, nil
}
