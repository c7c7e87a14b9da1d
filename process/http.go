package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/annals/annals"
)

// HTTPPath is where annals serve mounts Handler.
const HTTPPath = "/api/processes"

// Limits of the HTTP API.
const (
	// MaxManagers bounds the managers one listing reports.
	MaxManagers = 100
	// maxControlBody bounds an abandon's body (its reason).
	maxControlBody = 4 << 10
)

// Handler serves the JSON API of the process managers whose streams are in
// store, under HTTPPath:
//
//	GET  /api/processes                     every manager's Report (at most MaxManagers)
//	GET  /api/processes/{name}              one manager's Report
//	GET  /api/processes/{name}/{id}         an instance's status and history
//	POST /api/processes/{name}/{id}/retry   Retry (202: the run takes it)
//	POST /api/processes/{name}/{id}/abandon Abandon, with {"reason": "..."}, ?reason=, or neither
//
// Errors are {"error": "..."} with 400, 404 or 409. It reads and appends
// to store only; credentials are the mounting server's business. The
// store must list streams (annals.StreamLister) for the listing.
func Handler(store annals.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		names, err := Managers(r.Context(), store)
		if err != nil {
			writeError(w, err)
			return
		}
		reports := []Report{}
		for _, name := range names {
			rep, err := Inspect(r.Context(), store, name)
			if err != nil {
				writeError(w, err)
				return
			}
			reports = append(reports, rep)
		}
		writeJSON(w, http.StatusOK, map[string]any{"managers": reports})
	})
	mux.HandleFunc("GET "+HTTPPath+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		rep, err := Inspect(r.Context(), store, r.PathValue("name"))
		if err == nil && rep.Started == 0 && rep.Checkpoint == 0 {
			err = fmt.Errorf("%w: no manager %q has run on this store", ErrNoInstance, r.PathValue("name"))
		}
		writeResult(w, rep, err)
	})
	mux.HandleFunc("GET "+HTTPPath+"/{name}/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, history, err := InspectInstance(r.Context(), store, r.PathValue("name"), r.PathValue("id"))
		writeResult(w, map[string]any{"instance": st, "history": history}, err)
	})
	mux.HandleFunc("POST "+HTTPPath+"/{name}/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, id := r.PathValue("name"), r.PathValue("id")
		var err error
		switch r.PathValue("action") {
		case "retry":
			err = Retry(r.Context(), store, name, id)
		case "abandon":
			var body struct{ Reason string }
			data, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
			if len(strings.TrimSpace(string(data))) > 0 && json.Unmarshal(data, &body) != nil {
				err = fmt.Errorf("%w: the body is not {\"reason\": \"...\"}", annals.ErrInvalidInput)
			} else {
				if body.Reason == "" {
					body.Reason = r.URL.Query().Get("reason")
				}
				err = Abandon(r.Context(), store, name, id, body.Reason)
			}
		default:
			err = fmt.Errorf("%w: no action %q (retry, abandon)", annals.ErrInvalidInput, r.PathValue("action"))
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"queued": r.PathValue("action"), "instance": id})
	})
	cop := http.NewCrossOriginProtection() // a page elsewhere must not retry or abandon
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
	}))
	return cop.Handler(mux)
}

// Managers lists the names of the managers that have run on store, in
// byte order, at most MaxManagers. It skips each manager's instances in
// one step, so their number does not matter.
func Managers(ctx context.Context, store annals.Store) ([]string, error) {
	lister, ok := store.(annals.StreamLister)
	if !ok {
		return nil, fmt.Errorf("%w: this store cannot list its streams", annals.ErrInvalidInput)
	}
	var names []string
	after := ""
	for len(names) < MaxManagers {
		page, err := lister.ListStreams(ctx, annals.ListStreamsOptions{Prefix: streamPrefix, After: after, Limit: 1})
		if err != nil || len(page) == 0 {
			return names, err
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(page[0].Name, streamPrefix), "-")
		name, _, _ = strings.Cut(name, ".")
		if !validName(name) {
			after = page[0].Name // not a manager's: step over it
			continue
		}
		names = append(names, name)
		// A name holds letters, digits and '_', all after '-' and '.', and
		// '~' sorts after them: the manager's instances, its control and
		// lease streams sort between its stream and this cursor.
		after = streamPrefix + name + ".~"
	}
	return names, nil
}

func writeResult(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoInstance):
		code = http.StatusNotFound
	case errors.Is(err, ErrNotApplicable):
		code = http.StatusConflict
	case errors.Is(err, annals.ErrInvalidInput):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
