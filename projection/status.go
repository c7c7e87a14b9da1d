package projection

import (
	"time"

	"github.com/annals/annals"
)

// State of a projector.
type State uint8

const (
	// Stopped: not running (never started, or its context ended).
	Stopped State = iota
	// Running: following the log.
	Running
	// Paused: running, but applying nothing until Resume.
	Paused
	// Rebuilding: replaying the log after a Reset, not yet caught up;
	// or building the next generation of a blue/green rebuild while the
	// active one keeps serving (Status.Rebuild).
	Rebuilding
	// Failed: the error policy gave up; LastError says why.
	Failed
	// Standby: running, but another instance holds the projection's
	// lease (see Leaser); it takes over when that instance stops or dies.
	Standby
)

func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Paused:
		return "paused"
	case Rebuilding:
		return "rebuilding"
	case Failed:
		return "failed"
	case Standby:
		return "standby"
	}
	return "unknown"
}

// MarshalText writes the state by name (in JSON, "running").
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is a projector's state and progress.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Position is the checkpoint: the last global position dealt with.
	Position annals.Position `json:"position"`
	// Head is the last position of the store when Status was called.
	Head annals.Position `json:"head"`
	// Lag is Head minus Position (0 if the projection is ahead of the
	// head it was given, which a concurrent append can cause).
	Lag uint64 `json:"lag"`
	// EventsPerSecond is the rate of applied events over the last
	// rateWindow seconds.
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// LastError is the last error seen (handler, target or subscription),
	// empty if none since the projector was made; LastErrorAt when.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// Parked counts the events parked since the last reset.
	Parked uint64 `json:"parked"`
	// Generation is the active generation of the read model: 0 until a
	// blue/green rebuild switches to the next.
	Generation uint64 `json:"generation"`
	// Rebuild is the blue/green rebuild in progress, if any.
	Rebuild *RebuildStatus `json:"rebuild,omitempty"`
}

// RebuildStatus is the progress of a blue/green rebuild.
type RebuildStatus struct {
	// Generation is the one being built.
	Generation uint64 `json:"generation"`
	// Position is its checkpoint; Lag is the store's head minus it.
	Position annals.Position `json:"position"`
	Lag      uint64          `json:"lag"`
	// LastError is the builder's last error (one it retries, or parks
	// an event for), empty if none.
	LastError string `json:"lastError,omitempty"`
}

// rate counts events in one-second buckets over the last rateWindow
// seconds. It reads no clock: the caller passes the time.
type rate struct {
	buckets [rateWindow]uint64
	// second is the Unix second of the newest bucket.
	second int64
}

// advance moves the window to now, emptying the buckets it passes.
func (r *rate) advance(now time.Time) {
	s := now.Unix()
	if s <= r.second {
		return
	}
	if s-r.second >= rateWindow {
		r.buckets = [rateWindow]uint64{}
	} else {
		for t := r.second + 1; t <= s; t++ {
			r.buckets[t%rateWindow] = 0
		}
	}
	r.second = s
}

func (r *rate) add(now time.Time, n uint64) {
	r.advance(now)
	r.buckets[now.Unix()%rateWindow] += n
}

// perSecond is the mean rate over the window ending at now.
func (r *rate) perSecond(now time.Time) float64 {
	r.advance(now)
	var sum uint64
	for _, b := range r.buckets {
		sum += b
	}
	return float64(sum) / rateWindow
}
