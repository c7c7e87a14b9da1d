package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/google/uuid"
)

// Routes is a Dispatcher that sends each command to the Route of its
// type. A command of a type without a route is refused.
type Routes map[string]Route

// Route sends the commands of one type.
type Route struct {
	Send  func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error
	Taken func(ctx context.Context, stream string, key uuid.UUID) (bool, error)
}

// Send implements Dispatcher.
func (rs Routes) Send(ctx context.Context, c Command, key uuid.UUID) error {
	r, ok := rs[c.Type]
	if !ok {
		return fmt.Errorf("%w: no route for a %s command", ErrRefused, c.Type)
	}
	return r.Send(ctx, c.Stream, c.Data, key)
}

// Taken implements Dispatcher.
func (rs Routes) Taken(ctx context.Context, c Command, key uuid.UUID) (bool, error) {
	r, ok := rs[c.Type]
	if !ok {
		return false, nil // never sent: Send refuses it
	}
	return r.Taken(ctx, c.Stream, key)
}

// HandlerRoute routes commands to h, each decoded from its JSON body by
// decode and handled with its idempotency key as the command's id. An
// error of h is a refusal (not retried) unless it may pass: a conflict
// every attempt lost, a timeout, a closed store, a full disk.
func HandlerRoute[S, C, E any](h *command.Handler[S, C, E], decode func(json.RawMessage) (C, error)) Route {
	return Route{
		Send: func(ctx context.Context, stream string, data json.RawMessage, key uuid.UUID) error {
			cmd, err := decode(data)
			if err != nil {
				return fmt.Errorf("%w: decoding the command: %v", ErrRefused, err)
			}
			_, err = h.Handle(ctx, stream, cmd, command.WithID(key))
			if err != nil && !mayPass(err) {
				return fmt.Errorf("%w: %w", ErrRefused, err)
			}
			return err
		},
		Taken: func(ctx context.Context, stream string, key uuid.UUID) (bool, error) {
			return h.Handled(ctx, stream, key)
		},
	}
}

// mayPass reports whether err may not happen again on a retry.
func mayPass(err error) bool {
	var conflict *command.ConflictError
	return errors.As(err, &conflict) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, annals.ErrClosed) || errors.Is(err, annals.ErrDiskFull) || errors.Is(err, annals.ErrWrongExpectedRevision)
}
