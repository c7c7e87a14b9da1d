package todo

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
	"github.com/annals/annals/process"
)

// The mission's PurgeAllCompletedTodos across users, when each user's
// list is its own aggregate: a process manager sends the command to every
// user's list, at most a few at a time, and each list purges its own
// completed todos in one event. (Within one user's list, the purge is one
// command: see Decider.)

// PurgeRequested, appended to any stream, asks to purge the completed
// todos of every user in Users; Request names the purge (its instance).
type PurgeRequested struct {
	Request string   `json:"request"`
	Users   []string `json:"users"`
}

// PurgeCommand is the type of the command the purge sends to each list.
const PurgeCommand = "PurgeAllCompletedTodos"

// purgeEvent is the purge instance's own events: it needs none, all it
// does is in its records.
type purgeEvent struct{}

// Purges is the process manager of PurgeRequested events, sending at most
// inFlight commands at a time, each retried 3 times a second apart.
func Purges(inFlight int) *process.Manager[struct{}, purgeEvent] {
	return &process.Manager[struct{}, purgeEvent]{
		Name:   "purges",
		Filter: annals.EventTypePrefixFilter("PurgeRequested"),
		Correlate: func(e annals.Event) (string, bool) {
			var r PurgeRequested
			return r.Request, e.Type == "PurgeRequested" && json.Unmarshal(e.Data, &r) == nil && r.Request != ""
		},
		Initial: func() struct{} { return struct{}{} },
		Evolve:  func(s struct{}, _ purgeEvent) struct{} { return s },
		Decide:  decidePurge,
		Codec:   codec.New[purgeEvent](codec.Options{}),
		// A purge has no undo: a list that refuses it for good stops the
		// purge, and the lists purged stay purged.
		Policy: process.Policy{InFlight: inFlight, Retries: 3, RetryAfter: time.Second, OnFailure: process.Stop},
	}
}

var errNotARequest = errors.New("todo: not a PurgeRequested event")

func decidePurge(_ struct{}, in process.Input) ([]purgeEvent, process.Decision, error) {
	var r PurgeRequested
	if in.Event == nil || json.Unmarshal(in.Event.Data, &r) != nil {
		return nil, process.Decision{}, errNotARequest
	}
	d := process.Decision{Finish: true}
	for _, user := range r.Users {
		d.Commands = append(d.Commands, process.Command{Stream: Stream(user), Type: PurgeCommand})
	}
	return nil, d, nil
}

// PurgeRoutes sends the purge's commands to the lists through h.
func PurgeRoutes(h *command.Handler[List, Command, Event]) process.Routes {
	return process.Routes{PurgeCommand: process.HandlerRoute(h, func(json.RawMessage) (Command, error) {
		return PurgeAllCompletedTodos{}, nil
	})}
}
