package todo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/command/commandtest"
	"github.com/annals/annals/demo/todo"
	"github.com/annals/annals/internal/teststores"
)

var (
	milk  = todo.TodoAdded{ID: "1", Title: "milk"}
	bread = todo.TodoAdded{ID: "2", Title: "bread"}
	jam   = todo.TodoAdded{ID: "3", Title: "jam"}
)

func TestPurgeAllCompletedTodos(t *testing.T) {
	// One command, one event for every completed todo of the list.
	commandtest.For(t, todo.Decider).Given(milk, bread, jam, todo.TodoCompleted{ID: "1"}, todo.TodoCompleted{ID: "3"}).
		When(todo.PurgeAllCompletedTodos{}).
		Then(todo.CompletedTodosPurged{IDs: []string{"1", "3"}})
	// Nothing completed: nothing to do.
	commandtest.For(t, todo.Decider).Given(milk, bread).When(todo.PurgeAllCompletedTodos{}).Then()
	// Reopened before the purge: kept.
	commandtest.For(t, todo.Decider).Given(milk, bread, todo.TodoCompleted{ID: "1"}, todo.TodoReopened{ID: "1"}, todo.TodoCompleted{ID: "2"}).
		When(todo.PurgeAllCompletedTodos{}).
		ThenState(func(l todo.List) string {
			if len(l.Todos) != 1 || l.Todos[0].ID != "1" || l.Todos[0].Completed {
				return fmt.Sprintf("%+v, want milk alone, open", l.Todos)
			}
			return ""
		})
}

func TestTodos(t *testing.T) {
	commandtest.For(t, todo.Decider).Given().When(todo.AddTodo{ID: "1", Title: "milk"}).Then(milk)
	commandtest.For(t, todo.Decider).Given(milk).When(todo.AddTodo{ID: "1", Title: "more milk"}).ThenError(todo.ErrExists)
	commandtest.For(t, todo.Decider).Given().When(todo.AddTodo{ID: "1"}).ThenError(todo.ErrTitle)
	commandtest.For(t, todo.Decider).Given(milk).When(todo.CompleteTodo{ID: "1"}).Then(todo.TodoCompleted{ID: "1"})
	commandtest.For(t, todo.Decider).Given(milk, todo.TodoCompleted{ID: "1"}).When(todo.CompleteTodo{ID: "1"}).Then()
	commandtest.For(t, todo.Decider).Given(milk).When(todo.CompleteTodo{ID: "2"}).ThenError(todo.ErrUnknown)
	commandtest.For(t, todo.Decider).Given(milk).When(todo.ReopenTodo{ID: "1"}).ThenError(todo.ErrNotCompleted)
	commandtest.For(t, todo.Decider).Given(milk, todo.TodoCompleted{ID: "1"}, todo.CompletedTodosPurged{IDs: []string{"1"}}).
		When(todo.CompleteTodo{ID: "1"}).ThenError(todo.ErrUnknown)

	full := []todo.Event{}
	for i := range todo.MaxTodos {
		full = append(full, todo.TodoAdded{ID: fmt.Sprint(i), Title: "t"})
	}
	commandtest.For(t, todo.Decider).Given(full...).When(todo.AddTodo{ID: "x", Title: "t"}).ThenError(todo.ErrTooMany)
}

// A purge races with clients completing and reopening todos of the same
// list. Whatever the interleaving, each purge removed exactly the todos
// that were completed at the revision it was appended at: the decision and
// the append are one step on the list's stream.
func TestPurgeRaces(t *testing.T) {
	for _, kind := range []string{"memory", "embedded"} {
		t.Run(kind, func(t *testing.T) {
			s := teststores.Open(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h := &command.Handler[todo.List, todo.Command, todo.Event]{Store: s, Decider: todo.Decider, Codec: todo.Codec,
				Retry: command.Retry{MaxAttempts: 100, MaxBackoff: 10 * time.Millisecond}}
			stream := todo.Stream("ada")
			const n = 40
			for i := range n {
				if _, err := h.Handle(ctx, stream, todo.AddTodo{ID: fmt.Sprint(i), Title: "task"}); err != nil {
					t.Fatal(err)
				}
			}
			// A few completed before the race, so that the first purge has
			// something to purge however the goroutines are scheduled.
			for _, id := range []string{"1", "2", "3"} {
				if _, err := h.Handle(ctx, stream, todo.CompleteTodo{ID: id}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < n; i += 4 {
						var cmd todo.Command = todo.CompleteTodo{ID: fmt.Sprint(i)}
						if i%5 == 0 {
							cmd = todo.ReopenTodo{ID: fmt.Sprint(i)}
						}
						if _, err := h.Handle(ctx, stream, cmd); err != nil && !isDomain(err) {
							t.Error(err)
						}
					}
				})
			}
			for range 3 {
				wg.Go(func() {
					for range 5 {
						if _, err := h.Handle(ctx, stream, todo.PurgeAllCompletedTodos{}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()

			// Replay: at each purge, the todos it names are exactly those
			// completed just before it.
			list, purges := todo.Decider.Initial(), 0
			for ev, err := range s.ReadStream(ctx, stream, annals.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				e, _, err := todo.Codec.Decode(ev)
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := e.(todo.CompletedTodosPurged); ok {
					purges++
					var completed []string
					for _, td := range list.Todos {
						if td.Completed {
							completed = append(completed, td.ID)
						}
					}
					if !slices.Equal(completed, p.IDs) {
						t.Fatalf("revision %d purges %v; completed then: %v", ev.Revision, p.IDs, completed)
					}
				}
				list = todo.Decider.Evolve(list, e)
			}
			if purges == 0 {
				t.Fatal("no purge recorded")
			}
			t.Logf("%d purges, %d todos left", purges, len(list.Todos))
		})
	}
}

// isDomain: completing a purged todo, or reopening one not completed, is
// a refusal, not a failure.
func isDomain(err error) bool {
	return errors.Is(err, todo.ErrUnknown) || errors.Is(err, todo.ErrNotCompleted)
}
