package todo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/demo/todo"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
)

func itemHandler(s annals.Store) *command.Handler[todo.Item, todo.Command, todo.Event] {
	return &command.Handler[todo.Item, todo.Command, todo.Event]{Store: s, Decider: todo.ItemDecider, Codec: todo.Codec}
}

// seedItems adds todos a..e for user, each its own stream, and completes
// those in done.
func seedItems(t *testing.T, ctx context.Context, s annals.Store, user string, done ...string) []string {
	t.Helper()
	h := itemHandler(s)
	ids := []string{"a", "b", "c", "d", "e"}
	for _, id := range ids {
		if _, err := h.Handle(ctx, todo.ItemStream(user, id), todo.AddTodo{ID: id, Title: "todo " + id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range done {
		if _, err := h.Handle(ctx, todo.ItemStream(user, id), todo.CompleteTodo{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// TestPurgeUser purges a user's completed todos, one stream each, in one
// atomic append, on every store.
func TestPurgeUser(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) { testPurgeUser(t, teststores.Open(t, kind)) })
	}
}

func testPurgeUser(t *testing.T, s annals.Store) {
	ctx := context.Background()
	ids := seedItems(t, ctx, s, "ann", "a", "c", "d")
	res, err := todo.PurgeUser(ctx, s, "ann", ids)
	if err != nil {
		t.Fatal(err)
	}
	if res.LastPosition-res.FirstPosition != 2 {
		t.Fatalf("purges at %d..%d, want 3 consecutive positions", res.FirstPosition, res.LastPosition)
	}
	for i, id := range ids {
		got := teststores.Types(t, s, todo.ItemStream("ann", id))
		purged := strings.HasSuffix(got, "TodoPurged")
		if want := id == "a" || id == "c" || id == "d"; purged != want || res.States[i].Purged != want {
			t.Errorf("todo %s: types %v, state purged %v, want purged %v", id, got, res.States[i].Purged, want)
		}
	}
	again, err := todo.PurgeUser(ctx, s, "ann", ids)
	if err != nil || again.LastPosition != 0 {
		t.Fatalf("second purge: %+v, %v; want nothing appended", again, err)
	}
}

// racingStore completes todo b of ann once, just before the purge's first
// append: the purge's checks must then refuse that append, and its retry
// purge b too.
type racingStore struct {
	annals.Store
	raced bool
}

func (r *racingStore) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	if !r.raced {
		r.raced = true
		if _, err := itemHandler(r.Store).Handle(ctx, todo.ItemStream("ann", "b"), todo.CompleteTodo{ID: "b"}); err != nil {
			return annals.MultiAppendResult{}, err
		}
	}
	return r.Store.AppendMulti(ctx, m)
}

func TestPurgeUserDecidesAgainOnChange(t *testing.T) {
	ctx := context.Background()
	s := &racingStore{Store: memory.New(memory.Options{})}
	ids := seedItems(t, ctx, s.Store, "ann", "a")
	res, err := todo.PurgeUser(ctx, s, "ann", ids)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || !res.States[0].Purged || !res.States[1].Purged {
		t.Fatalf("attempts %d, a purged %v, b purged %v: want 2 attempts and both purged", res.Attempts, res.States[0].Purged, res.States[1].Purged)
	}
}

func ExamplePurgeUser() {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()
	h := &command.Handler[todo.Item, todo.Command, todo.Event]{Store: s, Decider: todo.ItemDecider, Codec: todo.Codec}
	for _, id := range []string{"milk", "bread", "eggs"} {
		h.Handle(ctx, todo.ItemStream("ann", id), todo.AddTodo{ID: id, Title: "buy " + id})
	}
	h.Handle(ctx, todo.ItemStream("ann", "milk"), todo.CompleteTodo{ID: "milk"})
	h.Handle(ctx, todo.ItemStream("ann", "eggs"), todo.CompleteTodo{ID: "eggs"})

	// One decision over the three streams, one atomic append.
	res, err := todo.PurgeUser(ctx, s, "ann", []string{"milk", "bread", "eggs"})
	if err != nil {
		panic(err)
	}
	for e, err := range s.ReadAll(ctx, annals.ReadAllOptions{From: res.FirstPosition}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Position, e.Stream, e.Type)
	}
	// Output:
	// 6 todo-ann-milk TodoPurged
	// 7 todo-ann-eggs TodoPurged
}
