package todo_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/todo"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
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
	var out strings.Builder
	rep, err := todo.RunPurge(context.Background(), teststores.Embedded(t), todo.PurgeConfig{Users: users, Todos: 10, InFlight: 8}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.MostInFlight > 8 || rep.MostInFlight < 1 {
		t.Errorf("%d commands in flight at once, want 1 to 8", rep.MostInFlight)
	}
	if rep.Purged != users*5 || rep.Completed != users*5 {
		t.Errorf("%d todos purged of %d completed, want %d", rep.Purged, rep.Completed, users*5)
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "each purged once") {
		t.Errorf("the report:\n%s", out.String())
	}
}

// TestVerifyPurged: the replay refuses a list purged twice, or not at
// all, or of the wrong todos.
func TestVerifyPurged(t *testing.T) {
	ctx := context.Background()
	s := teststores.Open(t, "memory")
	if err := todo.Seed(ctx, s, []string{"a", "b", "c"}, 4); err != nil {
		t.Fatal(err)
	}
	append := func(user string, events ...todo.Event) {
		for _, e := range events {
			d, err := todo.Codec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, todo.Stream(user), annals.Any, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	append("a", todo.CompletedTodosPurged{IDs: []string{"0", "2"}}, todo.TodoCompleted{ID: "1"}, todo.CompletedTodosPurged{IDs: []string{"1"}})
	append("b", todo.CompletedTodosPurged{IDs: []string{"0"}})
	for _, user := range []string{"a", "b", "c"} {
		if _, _, err := todo.VerifyPurged(ctx, s, user, 4); err == nil {
			t.Errorf("%s: the replay found nothing wrong", user)
		}
	}
	append("c", todo.CompletedTodosPurged{IDs: []string{"0", "2"}}, todo.TodoCompleted{ID: "1"})
	if purged, late, err := todo.VerifyPurged(ctx, s, "c", 4); err != nil || purged != 2 || late != 1 {
		t.Errorf("c: %d purged, %d late, %v; want 2, 1, nil", purged, late, err)
	}
}

func TestPurgeConfig(t *testing.T) {
	for _, bad := range []todo.PurgeConfig{{Users: -1}, {Users: todo.MaxUsers + 1}, {Todos: todo.MaxTodos + 1}, {InFlight: process.MaxInFlight + 1}} {
		if _, err := todo.RunPurge(context.Background(), teststores.Open(t, "memory"), bad, io.Discard); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}
