package todo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/examples/todo"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// TestPurgeAcrossUsers: 1,000 users with 10 todos each, half completed;
// one PurgeRequested; the process manager purges every user's list with at
// most 8 commands in flight, and a replay of the log finds each list
// purged once, of exactly its completed todos.
func TestPurgeAcrossUsers(t *testing.T) {
	users := 1000
	if testing.Short() {
		users = 100
	}
	const todos, inFlight = 10, 8
	ctx := context.Background()
	s := teststores.Embedded(t)
	names := seedUsers(t, s, users, todos)
	h := &command.Handler[todo.List, todo.Command, todo.Event]{Store: s, Codec: todo.Codec, Decider: todo.Decider}
	routes := todo.PurgeRoutes(h)
	var now, most atomic.Int64
	inner := routes[todo.PurgeCommand]
	send := inner.Send
	inner.Send = func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return send(ctx, stream, data, key)
	}
	routes[todo.PurgeCommand] = inner
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- todo.Purges(inFlight).Run(runCtx, s, routes, process.Options{}) }()
	data, _ := json.Marshal(todo.PurgeRequested{Request: "p1", Users: names})
	if _, err := s.Append(ctx, "admin", annals.Any, annals.EventData{Type: "PurgeRequested", Data: data}); err != nil {
		t.Fatal(err)
	}
	for {
		st, _, err := process.InspectInstance(ctx, s, "purges", "p1")
		if err == nil && st.Status == process.Done {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	<-done
	if most.Load() > inFlight {
		t.Errorf("%d commands in flight at once, at most %d", most.Load(), inFlight)
	}
	for _, user := range names {
		verifyPurged(t, s, user, todos)
	}
}

// seedUsers gives each user a list of n todos, the even ones completed,
// in one append per user.
func seedUsers(t *testing.T, s annals.Store, users, n int) []string {
	t.Helper()
	names := make([]string, users)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for u := w; u < users; u += 8 {
				names[u] = fmt.Sprintf("user%04d", u)
				var events []annals.EventData
				for i := range n {
					for _, e := range []todo.Event{todo.TodoAdded{ID: fmt.Sprint(i), Title: "todo"}, todo.TodoCompleted{ID: fmt.Sprint(i)}} {
						if _, completed := e.(todo.TodoCompleted); completed && i%2 == 1 {
							continue
						}
						d, err := todo.Codec.Encode(e)
						if err != nil {
							t.Error(err)
							return
						}
						events = append(events, d)
					}
				}
				if _, err := s.Append(context.Background(), todo.Stream(names[u]), annals.NoStream, events...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return names
}

// verifyPurged replays a user's list: one purge, of the even todos.
func verifyPurged(t *testing.T, s annals.Store, user string, n int) {
	t.Helper()
	var purges [][]string
	list := todo.Decider.Initial()
	for ev, err := range s.ReadStream(context.Background(), todo.Stream(user), annals.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		e, _, err := todo.Codec.Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := e.(todo.CompletedTodosPurged); ok {
			purges = append(purges, p.IDs)
		}
		list = todo.Decider.Evolve(list, e)
	}
	var want []string
	for i := 0; i < n; i += 2 {
		want = append(want, fmt.Sprint(i))
	}
	if len(purges) != 1 || !slices.Equal(purges[0], want) || len(list.Todos) != n/2 {
		t.Errorf("%s: purges %v, %d todos left; want one purge of %v, %d left", user, purges, len(list.Todos), want, n/2)
	}
}
