package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/process"
)

// A process manager that closes every account a "BankClosing" event
// lists, at most two at a time: each close is a command to the account's
// own aggregate, sent with an idempotency key, and reopened if a later
// close is refused.
func Example() {
	store := memory.New(memory.Options{})
	ctx := context.Background()

	// The aggregate: an account that closes once, and reopens.
	type closed struct{ Closed bool }
	events := codec.New[closed](codec.Options{})
	codec.MustRegister[closed](events, "AccountClosedChanged")
	accounts := &command.Handler[bool, string, closed]{Store: store, Codec: events, Decider: command.Decider[bool, string, closed]{
		Initial: func() bool { return false },
		Evolve:  func(_ bool, e closed) bool { return e.Closed },
		Decide: func(isClosed bool, op string) ([]closed, error) {
			if (op == "close") == isClosed {
				return nil, nil // closed already, or open already
			}
			return []closed{{Closed: op == "close"}}, nil
		},
	}}
	routes := process.Routes{"account": process.HandlerRoute(accounts, func(data json.RawMessage) (string, error) {
		var op string
		return op, json.Unmarshal(data, &op)
	})}

	// The process: one instance per closing, correlated by its id.
	type closing struct {
		ID       string   `json:"id"`
		Accounts []string `json:"accounts"`
	}
	m := &process.Manager[struct{}, closed]{
		Name:   "closing",
		Filter: annals.EventTypePrefixFilter("BankClosing"),
		Correlate: func(e annals.Event) (string, bool) {
			var c closing
			return c.ID, json.Unmarshal(e.Data, &c) == nil && c.ID != ""
		},
		Initial: func() struct{} { return struct{}{} },
		Evolve:  func(s struct{}, _ closed) struct{} { return s },
		Decide: func(s struct{}, in process.Input) ([]closed, process.Decision, error) {
			var c closing
			if err := json.Unmarshal(in.Event.Data, &c); err != nil {
				return nil, process.Decision{}, err
			}
			d := process.Decision{Finish: true}
			for _, a := range c.Accounts {
				d.Commands = append(d.Commands, process.Command{Stream: a, Type: "account", Data: json.RawMessage(`"close"`),
					Undo: &process.Command{Stream: a, Type: "account", Data: json.RawMessage(`"open"`)}})
			}
			return nil, d, nil
		},
		Codec:  events,
		Policy: process.Policy{InFlight: 2, Retries: 3, RetryAfter: time.Second},
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx, store, routes, process.Options{}) }()
	store.Append(ctx, "bank-1", annals.Any, annals.EventData{Type: "BankClosing",
		Data: []byte(`{"id":"c1","accounts":["account-1","account-2","account-3"]}`)})
	for !instanceEnded(store, "process.closing-c1") {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done
	for _, a := range []string{"account-1", "account-2", "account-3"} {
		isClosed, _, _ := accounts.Load(ctx, a)
		fmt.Println(a, "closed:", isClosed)
	}
	// Output:
	// account-1 closed: true
	// account-2 closed: true
	// account-3 closed: true
}

// instanceEnded reports whether an instance's stream ends with its end.
func instanceEnded(s annals.Store, stream string) bool {
	for ev, err := range s.ReadStream(context.Background(), stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		return err == nil && (strings.HasSuffix(ev.Type, ".Done") || strings.HasSuffix(ev.Type, ".Failed"))
	}
	return false
}
