package todo

import (
	"context"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
)

// The same todos with one stream per todo ("todo-<user>-<id>"), the
// shape the mission starts from: each todo its own aggregate. Purging a
// user's completed todos then spans every one of the user's streams;
// PurgeUser decides it once over all of them and appends the purges in
// one atomic multi-stream append, checked against every todo read, so a
// todo completed or reopened meanwhile makes it decide again. No process
// manager is needed for one user.

// TodoPurged removes the todo of its stream.
type TodoPurged struct {
	ID string `json:"id"`
}

func (TodoPurged) isEvent() {}

// Item is one todo as its own stream sees it.
type Item struct {
	Todo
	Added, Purged bool
}

// ItemStream is the stream of one todo of user.
func ItemStream(user, id string) string { return "todo-" + user + "-" + id }

// ItemDecider is one todo's domain logic: AddTodo, CompleteTodo and
// ReopenTodo, each on the todo's own stream.
var ItemDecider = command.Decider[Item, Command, Event]{
	Initial: func() Item { return Item{} },
	Evolve:  evolveItem,
	Decide:  decideItem,
}

func decideItem(it Item, c Command) ([]Event, error) {
	switch c := c.(type) {
	case AddTodo:
		switch {
		case c.Title == "" || len(c.Title) > MaxTitleBytes:
			return nil, ErrTitle
		case it.Added:
			return nil, ErrExists
		}
		return []Event{TodoAdded{ID: c.ID, Title: c.Title}}, nil
	case CompleteTodo, ReopenTodo:
		if !it.Added || it.Purged {
			return nil, ErrUnknown
		}
		if _, complete := c.(CompleteTodo); complete {
			if it.Completed {
				return nil, nil
			}
			return []Event{TodoCompleted{ID: it.ID}}, nil
		}
		if !it.Completed {
			return nil, ErrNotCompleted
		}
		return []Event{TodoReopened{ID: it.ID}}, nil
	}
	return nil, fmt.Errorf("todo: %T is not a command to one todo", c)
}

func evolveItem(it Item, e Event) Item {
	switch e := e.(type) {
	case TodoAdded:
		it.Added, it.ID, it.Title = true, e.ID, e.Title
	case TodoCompleted:
		it.Completed = true
	case TodoReopened:
		it.Completed = false
	case TodoPurged:
		it.Purged = true
	}
	return it
}

// decideItemPurge purges every completed todo among the states.
func decideItemPurge(items []Item, _ Command) ([][]Event, error) {
	out := make([][]Event, len(items))
	for i, it := range items {
		if it.Added && it.Completed && !it.Purged {
			out[i] = []Event{TodoPurged{ID: it.ID}}
		}
	}
	return out, nil
}

// PurgeUser handles PurgeAllCompletedTodos for user's todos ids (as a
// read model of the user's todos lists them): one decision over the ids'
// streams, one atomic append of a TodoPurged to each completed one.
// Nothing is appended if none is completed. At most
// annals.DefaultMaxAppendChecks todos.
func PurgeUser(ctx context.Context, s annals.Store, user string, ids []string, opts ...command.Option) (command.MultiResult[Item, Event], error) {
	h := &command.Handler[Item, Command, Event]{Store: s, Decider: ItemDecider, Codec: Codec}
	streams := make([]string, len(ids))
	for i, id := range ids {
		streams[i] = ItemStream(user, id)
	}
	return h.HandleStreams(ctx, streams, PurgeAllCompletedTodos{}, decideItemPurge, opts...)
}
