package persistent

import (
	"cmp"
	"slices"
	"time"

	"github.com/annals/annals"
)

// Status of a group in GroupInfo, with KurrentDB's words where they fit.
const (
	StatusIdle       = "Idle"       // no consumer ever connected: not reading
	StatusCatchingUp = "CatchingUp" // reading history
	StatusLive       = "Live"       // following new events
)

// GroupInfo describes a group and what it is doing.
type GroupInfo struct {
	Stream   string
	Group    string
	Filter   *annals.Filter
	Settings Settings
	Status   string
	// Connections are the consumers, in connection order.
	Connections []ConnectionInfo
	// Delivered counts the events handed out since the group loaded.
	Delivered uint64
	// Checkpoint is where the group resumes after a restart (the first
	// event not known finished); HasCheckpoint is false until one is
	// written.
	Checkpoint    uint64
	HasCheckpoint bool
	// LastKnown is the last revision or position read from the store.
	LastKnown    uint64
	HasLastKnown bool
	// Buffered: read, not yet delivered. Retrying: waiting to be
	// delivered again (replays included). InFlight: with consumers.
	// Outstanding: read and not yet finished.
	Buffered, Retrying, InFlight, Outstanding int
	// Parked counts the parked messages not yet replayed.
	Parked int64
	// ReadError is the last failure of reading the store, nil after the
	// group caught up again.
	ReadError error
}

// ConnectionInfo describes one consumer.
type ConnectionInfo struct {
	ID          string
	Name        string
	BufferSize  int
	InFlight    int
	Delivered   uint64
	ConnectedAt time.Time
}

func (g *group) info() GroupInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.core
	out := GroupInfo{
		Stream: g.def.Stream, Group: g.def.Group, Filter: g.def.filter, Settings: g.def.Settings,
		Status: StatusIdle, Delivered: c.delivered,
		Checkpoint: c.checkpoint, HasCheckpoint: g.hasCheck,
		LastKnown: c.lastKnown, HasLastKnown: c.readAny,
		Buffered: len(c.buffer), InFlight: len(c.inFlight), Parked: c.parked, ReadError: g.readErr,
	}
	switch {
	case g.started && g.caughtUp:
		out.Status = StatusLive
	case g.started:
		out.Status = StatusCatchingUp
	}
	for _, m := range c.retry {
		if m.state == stateRetry {
			out.Retrying++
		}
	}
	for _, m := range c.window {
		if m.state != stateFinished {
			out.Outstanding++
		}
	}
	for _, k := range c.consumers {
		out.Connections = append(out.Connections, ConnectionInfo{ID: k.id, Name: k.name, BufferSize: k.bufferSize,
			InFlight: k.inFlight, Delivered: k.delivered, ConnectedAt: k.connectedAt})
	}
	return out
}

// Info describes one group.
func (m *Manager) Info(stream, name string) (GroupInfo, error) {
	m.mu.Lock()
	g, err := m.lookup(stream, name)
	m.mu.Unlock()
	if err != nil {
		return GroupInfo{}, err
	}
	return g.info(), nil
}

// List describes the groups on stream (annals.AllStream for $all's), or
// every group if stream is "", sorted by stream and name.
func (m *Manager) List(stream string) ([]GroupInfo, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	var groups []*group
	for k, g := range m.groups {
		if stream == "" || k.stream == stream {
			groups = append(groups, g)
		}
	}
	m.mu.Unlock()
	out := make([]GroupInfo, 0, len(groups))
	for _, g := range groups {
		out = append(out, g.info())
	}
	slices.SortFunc(out, func(a, b GroupInfo) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Group, b.Group))
	})
	return out, nil
}
