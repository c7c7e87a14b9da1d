package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/annals/annals"
)

// ProjectionsPath is the path under which the server mounts the HTTP API
// of Options.Projections (Projections.Handler).
const ProjectionsPath = "/api/projections"

// ProcessesPath is where Options.Processes is served (as package process
// names it: HTTPPath).
const ProcessesPath = "/api/processes"

// MaxProjectionNameBytes bounds a projection's name, as package projection
// does (projection.MaxNameBytes): a longer one in a request is refused
// before any lookup.
const MaxProjectionNameBytes = 200

// Projections are the projections a process runs, as the server serves
// them: their HTTP API, and status and control over KurrentDB's
// Projections gRPC service (projections_grpc.go). Package
// server/serveproj makes one of a projection.Registry. The server does not
// import package projection itself, so that serving a store does not bring
// in the storage engines of the projections' targets.
type Projections interface {
	// Handler serves the projections' HTTP API under ProjectionsPath. The
	// server mounts it behind Options.Credentials.
	Handler() http.Handler
	// Get returns the projection called name.
	Get(name string) (ProjectionControl, bool)
	// Statuses returns the status of every projection, sorted by name.
	// A projection whose status fails is listed all the same (a State no
	// KurrentDB status names, its LastError the failure) and its error is
	// joined into the one returned; a nil list says the listing as a
	// whole failed (the call's context ended).
	Statuses(ctx context.Context) ([]ProjectionStatus, error)
}

// ProjectionControl is one projection of Projections. Its methods' errors
// are answered with their message: those that wrap ErrProjectionRefused as
// FailedPrecondition, those that wrap ErrProjectionInvalid as
// InvalidArgument, annals.ErrClosed and the context's errors by their
// kind, any other as Internal.
type ProjectionControl interface {
	Status(ctx context.Context) (ProjectionStatus, error)
	// Pause stops the applying of a running projection; Resume restarts
	// it, or runs a failed one again from its checkpoint.
	Pause() error
	Resume() error
	// Reset empties the read model and replays the log into it.
	Reset(ctx context.Context) error
}

// ProjectionStatus is what KurrentDB's projection statistics show of a
// projection.
type ProjectionStatus struct {
	Name string
	// State is the projection's state by its name in package projection:
	// "running", "rebuilding" (KurrentDB's Running), "paused", "stopped",
	// "standby" (Stopped); any other, "failed" included, is Faulted.
	State string
	// Position is the checkpoint, Head the store's last position when the
	// status was read, Lag the one minus the other.
	Position, Head annals.Position
	Lag            uint64
	LastError      string
	LastErrorAt    time.Time
	// Parked counts the events parked since the last reset;
	// EventsPerSecond is the recent rate of applied events.
	Parked          uint64
	EventsPerSecond float64
	// Generation is the active generation of the read model.
	Generation uint64
	// Rebuild is the blue/green rebuild in progress, if any.
	Rebuild *ProjectionRebuild
}

// ProjectionRebuild is the progress of a blue/green rebuild: the
// generation being built and its checkpoint.
type ProjectionRebuild struct {
	Generation uint64
	Position   annals.Position
}

// Errors a ProjectionControl wraps so that the server answers with the
// right code (test with errors.Is).
var (
	// ErrProjectionRefused: the projection's state refuses the action.
	ErrProjectionRefused = errors.New("server: the projection's state refuses the action")
	// ErrProjectionInvalid: the request cannot be carried out as given.
	ErrProjectionInvalid = errors.New("server: invalid projection request")
)

// errorBody is the JSON of a refused HTTP request, as the projections' API
// writes its own errors.
type errorBody struct {
	Error string `json:"error"`
}

// mountProjections serves p's HTTP API on mux under ProjectionsPath. With
// credentials, every request needs them, GETs included, as every gRPC call
// does but the connection handshake: a status names the projections and
// shows their errors, which is as much the admin's business as the streams
// are.
func mountProjections(mux *http.ServeMux, p Projections, g *gate) {
	h := g.http(p.Handler())
	mux.Handle(ProjectionsPath, h)
	mux.Handle(ProjectionsPath+"/", h)
}

// http checks a request's Basic credentials before next serves it. Missing
// and bad credentials both answer 401 with a Basic challenge, so that curl
// and browsers know to send them (gRPC tells the two apart, as KurrentDB
// does; HTTP clients only act on the challenge).
func (g *gate) http(next http.Handler) http.Handler {
	if g.creds == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := "this server requires credentials (HTTP Basic)"
		code := http.StatusUnauthorized
		if header := r.Header.Get("Authorization"); header != "" {
			addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
			err := g.check(addr, header, func(string) (string, string, bool) { return r.BasicAuth() })
			var throttled *throttledError
			if errors.As(err, &throttled) {
				code = http.StatusTooManyRequests
				w.Header().Set("Retry-After", strconv.Itoa(int(throttled.wait.Seconds())+1))
			}
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			msg = err.Error()
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="annals", charset="UTF-8"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(errorBody{Error: msg})
	})
}
