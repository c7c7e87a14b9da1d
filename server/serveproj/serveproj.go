// Package serveproj serves a projection.Registry through package server:
// Registry adapts it to server.Projections, so that the server itself
// does not import package projection (whose targets bring pebble and
// PostgreSQL's driver) and a server of a store without projections does
// not carry them.
//
//	srv, err := server.New(store, server.Options{Projections: serveproj.Registry(reg)})
package serveproj

import (
	"context"
	"net/http"

	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
)

// Registry returns reg as the server serves it: its HTTP handler
// (projection.Registry.Handler) and its projections' status and controls,
// with the projector's refusals classified as the server answers them.
func Registry(reg *projection.Registry) server.Projections {
	return registry{reg}
}

type registry struct{ reg *projection.Registry }

func (r registry) Handler() http.Handler { return r.reg.Handler() }

func (r registry) Get(name string) (server.ProjectionControl, bool) {
	c, ok := r.reg.Get(name)
	if !ok {
		return nil, false
	}
	return control{c}, true
}

func (r registry) Statuses(ctx context.Context) ([]server.ProjectionStatus, error) {
	sts, err := r.reg.Statuses(ctx)
	if sts == nil {
		return nil, classify(err)
	}
	out := make([]server.ProjectionStatus, len(sts))
	for i, st := range sts {
		out[i] = status(st)
	}
	return out, classify(err)
}

// control is one projection of the registry.
type control struct{ c projection.Controller }

func (c control) Status(ctx context.Context) (server.ProjectionStatus, error) {
	st, err := c.c.Status(ctx)
	if err != nil {
		return server.ProjectionStatus{}, classify(err)
	}
	return status(st), nil
}

func (c control) Pause() error                    { return classify(c.c.Pause()) }
func (c control) Resume() error                   { return classify(c.c.Resume()) }
func (c control) Reset(ctx context.Context) error { return classify(c.c.Reset(ctx)) }

func status(st projection.Status) server.ProjectionStatus {
	out := server.ProjectionStatus{
		Name:            st.Name,
		State:           st.State.String(),
		Position:        st.Position,
		Head:            st.Head,
		Lag:             st.Lag,
		LastError:       st.LastError,
		LastErrorAt:     st.LastErrorAt,
		Parked:          st.Parked,
		EventsPerSecond: st.EventsPerSecond,
		Generation:      st.Generation,
	}
	if st.Rebuild != nil {
		out.Rebuild = &server.ProjectionRebuild{Generation: st.Rebuild.Generation, Position: st.Rebuild.Position}
	}
	return out
}

// classify marks err as the server's kind of projection error, by the
// HTTP API's own reading of it (projection.StatusCode), so that both
// protocols refuse the same errors: a conflict with the projection's state
// is server.ErrProjectionRefused, an invalid request
// server.ErrProjectionInvalid. Other errors (annals.ErrClosed, the
// context's) go as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch projection.StatusCode(err) {
	case http.StatusConflict:
		return &classified{err: err, kind: server.ErrProjectionRefused}
	case http.StatusBadRequest:
		return &classified{err: err, kind: server.ErrProjectionInvalid}
	}
	return err
}

// classified is err, with its message, also matching kind.
type classified struct {
	err  error
	kind error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.kind} }
