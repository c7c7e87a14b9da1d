// Package todo is the mission's todo list with PurgeAllCompletedTodos as one
// command: the transaction boundary is expanded from one todo to a user's
// whole list (one stream per user, "todos-<user>"), so purging every
// completed todo is one decision and one event, appended atomically at the
// revision it was decided on, instead of a command to each of n todos.
package todo

import (
	"errors"
	"fmt"
	"slices"

	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
)

// Limits of one list: the whole list is loaded for every command.
const (
	MaxTodos      = 1000
	MaxTitleBytes = 200
)

var (
	ErrTooMany      = fmt.Errorf("todo: a list holds at most %d todos", MaxTodos)
	ErrTitle        = fmt.Errorf("todo: a title has 1 to %d bytes", MaxTitleBytes)
	ErrExists       = errors.New("todo: a todo with this id exists")
	ErrUnknown      = errors.New("todo: no such todo")
	ErrNotCompleted = errors.New("todo: the todo is not completed")
)

// Event is an event of a user's list.
type Event interface{ isEvent() }

type TodoAdded struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type TodoCompleted struct {
	ID string `json:"id"`
}

type TodoReopened struct {
	ID string `json:"id"`
}

// CompletedTodosPurged removes every todo in IDs: all those completed when
// the purge was decided.
type CompletedTodosPurged struct {
	IDs []string `json:"ids"`
}

func (TodoAdded) isEvent()            {}
func (TodoCompleted) isEvent()        {}
func (TodoReopened) isEvent()         {}
func (CompletedTodosPurged) isEvent() {}

// Command is a command to a user's list.
type Command interface{ isCommand() }

type (
	AddTodo      struct{ ID, Title string }
	CompleteTodo struct{ ID string }
	ReopenTodo   struct{ ID string }
	// PurgeAllCompletedTodos removes every completed todo of the list.
	PurgeAllCompletedTodos struct{}
)

func (AddTodo) isCommand()                {}
func (CompleteTodo) isCommand()           {}
func (ReopenTodo) isCommand()             {}
func (PurgeAllCompletedTodos) isCommand() {}

// Todo is one entry of a list.
type Todo struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
}

// List is a user's list, in the order the todos were added.
type List struct {
	Todos []Todo `json:"todos"`
}

func (l List) find(id string) int {
	return slices.IndexFunc(l.Todos, func(t Todo) bool { return t.ID == id })
}

// Decider is the list's domain logic.
var Decider = command.Decider[List, Command, Event]{
	Initial: func() List { return List{} },
	Evolve:  evolve,
	Decide:  decide,
}

func decide(l List, c Command) ([]Event, error) {
	switch c := c.(type) {
	case AddTodo:
		switch {
		case c.Title == "" || len(c.Title) > MaxTitleBytes:
			return nil, ErrTitle
		case l.find(c.ID) >= 0:
			return nil, ErrExists
		case len(l.Todos) >= MaxTodos:
			return nil, ErrTooMany
		}
		return []Event{TodoAdded{ID: c.ID, Title: c.Title}}, nil
	case CompleteTodo:
		i := l.find(c.ID)
		if i < 0 {
			return nil, ErrUnknown
		}
		if l.Todos[i].Completed {
			return nil, nil // already done: nothing to record
		}
		return []Event{TodoCompleted{ID: c.ID}}, nil
	case ReopenTodo:
		i := l.find(c.ID)
		if i < 0 {
			return nil, ErrUnknown
		}
		if !l.Todos[i].Completed {
			return nil, ErrNotCompleted
		}
		return []Event{TodoReopened{ID: c.ID}}, nil
	case PurgeAllCompletedTodos:
		var ids []string
		for _, t := range l.Todos {
			if t.Completed {
				ids = append(ids, t.ID)
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		return []Event{CompletedTodosPurged{IDs: ids}}, nil
	}
	return nil, fmt.Errorf("todo: unknown command %T", c)
}

// evolve builds a new slice whenever it changes one, so that a state a
// caller kept is never changed under it.
func evolve(l List, e Event) List {
	switch e := e.(type) {
	case TodoAdded:
		l.Todos = append(slices.Clip(l.Todos), Todo{ID: e.ID, Title: e.Title})
	case TodoCompleted, TodoReopened:
		id, done := "", false
		switch e := e.(type) {
		case TodoCompleted:
			id, done = e.ID, true
		case TodoReopened:
			id = e.ID
		}
		if i := l.find(id); i >= 0 {
			l.Todos = slices.Clone(l.Todos)
			l.Todos[i].Completed = done
		}
	case CompletedTodosPurged:
		l.Todos = slices.DeleteFunc(slices.Clone(l.Todos), func(t Todo) bool { return slices.Contains(e.IDs, t.ID) })
	}
	return l
}

// Codec names the list's events in the store.
var Codec = codec.New[Event](codec.Options{})

func init() {
	codec.MustRegister[TodoAdded](Codec, "TodoAdded")
	codec.MustRegister[TodoCompleted](Codec, "TodoCompleted")
	codec.MustRegister[TodoReopened](Codec, "TodoReopened")
	codec.MustRegister[CompletedTodosPurged](Codec, "CompletedTodosPurged")
	codec.MustRegister[TodoPurged](Codec, "TodoPurged")
}

// Stream is the stream of user's list.
func Stream(user string) string { return "todos-" + user }
