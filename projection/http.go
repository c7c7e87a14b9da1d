package projection

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// Bounds of the HTTP handler.
const (
	// DefaultParkedLimit is how many parked events GET .../parked lists
	// without ?limit=.
	DefaultParkedLimit = 100
	// MaxRequestBodyBytes bounds a request's body. No endpoint takes one;
	// a client may still send a small one (an empty JSON object), which
	// is read and ignored so that its connection can be reused.
	MaxRequestBodyBytes = 4 << 10
)

// APIPrefix is the path under which Handler serves.
const APIPrefix = "/api/projections"

// Actions of POST /api/projections/{name}/{action}.
const (
	ActionPause        = "pause"
	ActionResume       = "resume"
	ActionReset        = "reset"
	ActionRebuild      = "rebuild"
	ActionReplayParked = "replay-parked"
)

// ActionResult is the answer to a POST action: the projection's status
// once the action is done (or, for a rebuild, started). Replayed is set by
// replay-parked only: how many parked events were applied.
type ActionResult struct {
	Status
	Replayed *int `json:"replayed,omitempty"`
}

// StatusList is the answer to GET /api/projections.
type StatusList struct {
	Projections []Status `json:"projections"`
}

// ParkedList is the answer to GET /api/projections/{name}/parked.
type ParkedList struct {
	Name   string        `json:"name"`
	Parked []ParkedEvent `json:"parked"`
}

// ErrorBody is the answer to a failed request, with a 4xx or 5xx code.
type ErrorBody struct {
	Error string `json:"error"`
	// Replayed is set by a replay-parked that stopped at an event failing
	// again: how many were applied before it.
	Replayed *int `json:"replayed,omitempty"`
}

// Handler serves the registry's projections as JSON under APIPrefix:
//
//	GET  /api/projections                       {"projections":[Status...]}
//	GET  /api/projections/{name}                Status
//	GET  /api/projections/{name}/parked?limit=N ParkedList (N in 1..MaxParkedListed, default DefaultParkedLimit)
//	POST /api/projections/{name}/{action}       ActionResult; action is pause, resume, reset, rebuild or replay-parked
//
// A name holding '/' goes escaped (%2F) in the path. Errors answer
// {"error":"..."}: 404 for an unknown projection or action, 405 for a
// wrong method, 400 for a bad limit or name, 413 for a body over
// MaxRequestBodyBytes, 409 when the projection's state refuses the action
// (ErrNoReset, ErrStandby, ErrRunning, ErrNotRunning, ErrFailed,
// ErrRebuilding, ErrGenerationMoved), 500 otherwise.
//
// Cross-origin POSTs from browsers are refused (403, see
// http.CrossOriginProtection): a page elsewhere must not reset a read
// model with the credentials a browser holds for this server. The handler
// does not authenticate; mount it behind what the server uses (package
// server checks its Basic credentials).
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	// Methods are checked by the handlers, not the patterns, so that a
	// wrong one answers JSON like every other error.
	mux.HandleFunc(APIPrefix, r.serveList)
	mux.HandleFunc(APIPrefix+"/{$}", r.serveList)
	mux.HandleFunc(APIPrefix+"/{name}", r.serveStatus)
	mux.HandleFunc(APIPrefix+"/{name}/{action}", r.serveAction)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+req.URL.Path)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(boundBody(mux))
}

// boundBody reads and drops a request's body, at most MaxRequestBodyBytes
// of it: no endpoint takes one, and a bigger one is refused.
func boundBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Body = http.MaxBytesReader(w, req.Body, MaxRequestBodyBytes)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, "request body over "+strconv.Itoa(MaxRequestBodyBytes)+" bytes (none is expected)")
				return
			}
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		next.ServeHTTP(w, req)
	})
}

func (r *Registry) serveList(w http.ResponseWriter, req *http.Request) {
	if !allow(w, req, http.MethodGet) {
		return
	}
	sts, err := r.Statuses(req.Context())
	if sts == nil {
		// Only an ended request fails the whole list; one projection's
		// failing Status is in the list itself.
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, StatusList{Projections: sts})
}

func (r *Registry) serveStatus(w http.ResponseWriter, req *http.Request) {
	if !allow(w, req, http.MethodGet) {
		return
	}
	c, ok := r.lookup(w, req)
	if !ok {
		return
	}
	st, err := c.Status(req.Context())
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (r *Registry) serveAction(w http.ResponseWriter, req *http.Request) {
	action := req.PathValue("action")
	if action == "parked" {
		r.serveParked(w, req)
		return
	}
	switch action {
	case ActionPause, ActionResume, ActionReset, ActionRebuild, ActionReplayParked:
	default:
		writeError(w, http.StatusNotFound, "no such action: "+strconv.Quote(action)+
			" (pause, resume, reset, rebuild, replay-parked; GET parked)")
		return
	}
	if !allow(w, req, http.MethodPost) {
		return
	}
	c, ok := r.lookup(w, req)
	if !ok {
		return
	}
	ctx := req.Context()
	var res ActionResult
	var err error
	switch action {
	case ActionPause:
		err = c.Pause()
	case ActionResume:
		err = c.Resume()
	case ActionReset:
		err = c.Reset(ctx)
	case ActionRebuild:
		err = c.Rebuild(ctx)
	case ActionReplayParked:
		var n int
		n, err = c.ReplayParked(ctx)
		res.Replayed = &n
	}
	if err != nil {
		body := ErrorBody{Error: err.Error()}
		if action == ActionReplayParked && *res.Replayed > 0 {
			body.Replayed = res.Replayed
		}
		writeJSON(w, StatusCode(err), body)
		return
	}
	if res.Status, err = c.Status(ctx); err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (r *Registry) serveParked(w http.ResponseWriter, req *http.Request) {
	if !allow(w, req, http.MethodGet) {
		return
	}
	limit := DefaultParkedLimit
	if s := req.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxParkedListed {
			writeError(w, http.StatusBadRequest, "limit "+strconv.Quote(s)+": want a number from 1 to "+strconv.Itoa(MaxParkedListed))
			return
		}
		limit = n
	}
	c, ok := r.lookup(w, req)
	if !ok {
		return
	}
	parked, err := c.ParkedEvents(req.Context(), limit)
	if err != nil {
		writeFailure(w, err)
		return
	}
	if parked == nil {
		parked = []ParkedEvent{} // [] rather than null
	}
	writeJSON(w, http.StatusOK, ParkedList{Name: c.Name(), Parked: parked})
}

// lookup finds the projection the path names, or answers 400 or 404.
func (r *Registry) lookup(w http.ResponseWriter, req *http.Request) (Controller, bool) {
	name := req.PathValue("name")
	if len(name) > MaxNameBytes {
		writeError(w, http.StatusBadRequest, "projection name over "+strconv.Itoa(MaxNameBytes)+" bytes")
		return nil, false
	}
	c, ok := r.Get(name)
	if !ok {
		writeError(w, http.StatusNotFound, "no projection "+strconv.Quote(name))
		return nil, false
	}
	return c, true
}

// allow answers 405 unless the request's method is method (HEAD goes with
// GET).
func allow(w http.ResponseWriter, req *http.Request, method string) bool {
	if req.Method == method || (method == http.MethodGet && req.Method == http.MethodHead) {
		return true
	}
	allowed := method
	if method == http.MethodGet {
		allowed += ", " + http.MethodHead
	}
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed (use "+method+")")
	return false
}

// conflicts are the errors by which a projection's state refuses an
// action: the request was understood, the projection is not in a state to
// do it.
var conflicts = []error{ErrNoReset, ErrStandby, ErrRunning, ErrNotRunning, ErrFailed, ErrRebuilding, ErrGenerationMoved}

// StatusCode is the HTTP status the handler answers err with.
func StatusCode(err error) int {
	for _, c := range conflicts {
		if errors.Is(err, c) {
			return http.StatusConflict
		}
	}
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeFailure(w http.ResponseWriter, err error) {
	writeError(w, StatusCode(err), err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// A status is live: no cache may answer for the projection.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// The client may be gone; there is no one left to tell.
	_ = enc.Encode(v)
}
