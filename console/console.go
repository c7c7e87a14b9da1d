// Package console is Annals' web console: what an operator opens first.
// One page (assets/, embedded, no build step) over JSON endpoints under
// APIPrefix: a dashboard of the last 15 minutes, the streams and their
// events, the live tail of $all, the persistent subscription groups, the
// error log; the projections' panel uses their own API (/api/projections).
//
// The handler does not authenticate: package server mounts it at "/"
// behind its credentials. It refuses cross-origin writes as the
// projections' API does, so that a page elsewhere cannot act with the
// credentials a browser holds for this server. docs/console.md shows it.
package console

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/alert"
	"github.com/annals/annals/metrics"
	"github.com/annals/annals/persistent"
)

// APIPrefix is where the console's JSON endpoints are.
const APIPrefix = "/console/api"

// Limits of the console's endpoints.
const (
	// DefaultPageEvents and MaxPageEvents bound a page of events.
	DefaultPageEvents = 50
	MaxPageEvents     = 500
	// MaxRequestBodyBytes bounds a request's body (a group's settings).
	MaxRequestBodyBytes = 64 << 10
	// MaxLiveTails bounds the live tails of $all served at once; more are
	// answered 503.
	MaxLiveTails = 16
	// liveTailEvents bounds the events one live tail sends before it asks
	// the browser to reconnect (which it does, from where it was).
	liveTailEvents = 10_000
	// liveTailEventsPerSecond bounds the events a live tail sends a
	// second; past it, the tail lets go of $all until the second ends and
	// then reports between which positions it skipped (see tail).
	liveTailEventsPerSecond = 100
	// maxEventBytesShown bounds the data and metadata of an event shown
	// whole; bigger ones are cut, with their size.
	maxEventBytesShown = 256 << 10
)

//go:embed assets
var assets embed.FS

// Options say what the console shows.
type Options struct {
	Store annals.Store
	// Groups are the persistent subscription groups; nil hides them.
	Groups *persistent.Manager
	// History feeds the dashboard's charts; nil shows none.
	History *metrics.History
	// Log is the error log; nil shows none.
	Log *Log
	// Alerts are the alerts' webhooks, whose last deliveries the error
	// log shows; nil shows none.
	Alerts *alert.Notifier
	// Info is shown on the dashboard.
	Info   Info
	Logger *slog.Logger
}

// Info is what the dashboard says of the server.
type Info struct {
	Version string        `json:"version"`
	Store   string        `json:"store"`
	Started time.Time     `json:"started"`
	Limits  annals.Limits `json:"limits"`
}

type console struct {
	opts  Options
	tails chan struct{} // one token per live tail
}

// New returns the console's handler: the page at "/" and its assets, the
// endpoints under APIPrefix.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &console{opts: opts, tails: make(chan struct{}, MaxLiveTails)}
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /console/assets/", http.StripPrefix("/console/assets/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		w.Header().Set("X-Frame-Options", "DENY")
		http.ServeFileFS(w, r, static, "index.html")
	})
	c.routes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBodyBytes)
		mux.ServeHTTP(w, r)
	}))
}

func (c *console) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+APIPrefix+"/info", c.serveInfo)
	mux.HandleFunc("GET "+APIPrefix+"/dashboard", c.serveDashboard)
	mux.HandleFunc("GET "+APIPrefix+"/logs", c.serveLogs)
	mux.HandleFunc("GET "+APIPrefix+"/streams", c.serveStreams)
	mux.HandleFunc("GET "+APIPrefix+"/stream", c.serveStream)
	mux.HandleFunc("GET "+APIPrefix+"/event", c.serveEvent)
	mux.HandleFunc("GET "+APIPrefix+"/metadata", c.serveMetadata)
	mux.HandleFunc("GET "+APIPrefix+"/all", c.serveAll)
	mux.HandleFunc("GET "+APIPrefix+"/live", c.serveLive)
	mux.HandleFunc("GET "+APIPrefix+"/subscriptions", c.serveGroups)
	mux.HandleFunc("POST "+APIPrefix+"/subscriptions", c.serveCreateGroup)
	mux.HandleFunc("PUT "+APIPrefix+"/subscriptions", c.serveUpdateGroup)
	mux.HandleFunc("DELETE "+APIPrefix+"/subscriptions", c.serveDeleteGroup)
	mux.HandleFunc("POST "+APIPrefix+"/subscriptions/replay-parked", c.serveReplayParked)
	mux.HandleFunc("GET "+APIPrefix+"/subscriptions/parked", c.serveGroupParked)
}

func (c *console) serveInfo(w http.ResponseWriter, r *http.Request) {
	info := struct {
		Info
		UptimeSeconds float64         `json:"uptimeSeconds"`
		Head          annals.Position `json:"head"`
	}{Info: c.opts.Info, UptimeSeconds: time.Since(c.opts.Info.Started).Round(time.Second).Seconds()}
	if h, ok := c.opts.Store.(annals.PositionReporter); ok {
		info.Head = h.Position()
	}
	writeJSON(w, info)
}

func (c *console) serveDashboard(w http.ResponseWriter, r *http.Request) {
	var samples []metrics.Sample
	interval := metrics.SampleInterval
	if c.opts.History != nil {
		samples, interval = c.opts.History.Samples(), c.opts.History.Interval()
	}
	writeJSON(w, struct {
		IntervalSeconds float64          `json:"intervalSeconds"`
		Samples         []metrics.Sample `json:"samples"`
		Enabled         bool             `json:"enabled"`
	}{interval.Seconds(), samples, c.opts.History != nil})
}

func (c *console) serveLogs(w http.ResponseWriter, r *http.Request) {
	var records []Record
	if c.opts.Log != nil {
		records = c.opts.Log.Records()
	}
	var deliveries []alert.Delivery
	if c.opts.Alerts != nil {
		deliveries = c.opts.Alerts.Deliveries()
	}
	writeJSON(w, struct {
		Records    []Record         `json:"records"`
		Kept       int              `json:"kept"`
		Deliveries []alert.Delivery `json:"deliveries"`
	}{records, LogRecords, deliveries})
}

// errorBody is every error's JSON.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}

// writeStoreError answers a store's error by its kind, never with more
// than its message.
func (c *console) writeStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, annals.ErrStreamNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, annals.ErrStreamDeleted):
		writeError(w, http.StatusGone, err.Error())
	case errors.Is(err, annals.ErrInvalidInput):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, annals.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, errors.ErrUnsupported):
		writeError(w, http.StatusNotImplemented, err.Error())
	default:
		c.opts.Logger.Warn("console: a store call failed", "err", err)
		writeError(w, http.StatusInternalServerError, "the store failed: "+err.Error())
	}
}

// pageLimit reads a page size: DefaultPageEvents if absent, an error
// outside 1..MaxPageEvents.
func pageLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return DefaultPageEvents, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPageEvents {
		return 0, errors.New("limit: want a number from 1 to " + strconv.Itoa(MaxPageEvents))
	}
	return n, nil
}
