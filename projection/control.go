package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// A Controller is what a status panel needs of a projection: read its
// status and parked events, and act on it. Every *Projector is one; the
// interface exists so that a Registry (and its HTTP handler) holds
// projectors of different model types side by side.
type Controller interface {
	// Name is the projection's name, unique in a Registry.
	Name() string
	Status(ctx context.Context) (Status, error)
	// Pause and Resume stop and restart the applying of a running
	// projection; Resume also retries a failed one. Each answers an
	// error wrapping ErrNotRunning, ErrFailed or ErrStandby when the
	// state refuses it (docs/projections.md, "Actions by state").
	Pause() error
	Resume() error
	// Reset empties the read model and replays the log in place.
	Reset(ctx context.Context) error
	// Rebuild starts a blue/green rebuild and returns: the new model is
	// built beside the active one, which keeps serving until the switch.
	Rebuild(ctx context.Context) error
	// ParkedEvents lists up to limit parked events, oldest first.
	ParkedEvents(ctx context.Context, limit int) ([]ParkedEvent, error)
	// ReplayParked retries the parked events and returns how many were
	// applied.
	ReplayParked(ctx context.Context) (int, error)
}

// Every projector is a Controller, whatever its target's model.
var (
	_ Controller = (*Projector[KV])(nil)
	_ Controller = (*Projector[any])(nil)
)

// MaxRegistered bounds the projections of one Registry: Statuses reads
// every one of them (the store's head and maybe a checkpoint each), so a
// listing stays a bounded amount of work.
const MaxRegistered = 1000

// Errors of a Registry.
var (
	// ErrDuplicate: a projection of that name is already registered.
	ErrDuplicate = errors.New("projection: a projection of that name is already registered")
	// ErrRegistryFull: the registry holds MaxRegistered projections.
	ErrRegistryFull = fmt.Errorf("projection: the registry already holds %d projections", MaxRegistered)
)

// stateUnknown is the state listed for a projection whose Status failed
// (its target unreachable, say); it marshals as "unknown".
const stateUnknown State = 255

// ParseState is the inverse of State.String, for clients that read a
// Status back from JSON; "unknown" is the state of a projection whose
// status could not be read.
func ParseState(s string) (State, error) {
	if s == stateUnknown.String() {
		return stateUnknown, nil
	}
	for st := range stateUnknown {
		if st.String() == s {
			return st, nil
		}
	}
	return stateUnknown, fmt.Errorf("projection: unknown state %q", s)
}

// UnmarshalText reads a state by name (see ParseState).
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	*s = st
	return err
}

// A Registry holds the projections a process runs, by name, for a status
// and control panel (see Handler). It is safe for concurrent use. It does
// not start or stop them: their owner does.
type Registry struct {
	mu sync.RWMutex
	by map[string]Controller
}

// NewRegistry returns an empty registry. The zero Registry is ready to use
// too.
func NewRegistry() *Registry { return &Registry{} }

// Add registers c under c.Name(). It fails with ErrDuplicate if the name is
// taken, with ErrRegistryFull beyond MaxRegistered, and with ErrInvalid for
// a nil controller or a name a projection could not have.
func (r *Registry) Add(c Controller) error {
	if c == nil {
		return invalid("nil controller")
	}
	name := c.Name()
	if err := checkName(name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.by[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	if len(r.by) >= MaxRegistered {
		return ErrRegistryFull
	}
	if r.by == nil {
		r.by = make(map[string]Controller)
	}
	r.by[name] = c
	return nil
}

// checkName applies the rules of Projection.Name that a registry depends
// on: a key in a URL path must be non-empty and bounded.
func checkName(name string) error {
	switch {
	case name == "":
		return invalid("a projection needs a name")
	case len(name) > MaxNameBytes:
		return invalid("name of %d bytes, at most %d", len(name), MaxNameBytes)
	}
	return nil
}

// Remove unregisters the projection called name, if any, and reports
// whether it was there.
func (r *Registry) Remove(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.by[name]
	delete(r.by, name)
	return ok
}

// Get returns the projection called name.
func (r *Registry) Get(name string) (Controller, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.by[name]
	return c, ok
}

// Names lists the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.by))
	for name := range r.by {
		names = append(names, name)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	return names
}

// controllers returns the registered controllers sorted by name, so that
// callers can ask them for their status without holding the lock (a
// Status may wait on a target).
func (r *Registry) controllers() []Controller {
	r.mu.RLock()
	cs := make([]Controller, 0, len(r.by))
	for _, c := range r.by {
		cs = append(cs, c)
	}
	r.mu.RUnlock()
	slices.SortFunc(cs, func(a, b Controller) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
	return cs
}

// Statuses returns the status of every registered projection, sorted by
// name. One projection's failing Status does not hide the others: it is
// listed with its name, state "unknown" and the error as LastError, and
// the error returned joins every such failure. A panel shows the list
// whatever the error; the error is for callers that want all or nothing.
func (r *Registry) Statuses(ctx context.Context) ([]Status, error) {
	cs := r.controllers()
	out := make([]Status, 0, len(cs))
	var errs []error
	for _, c := range cs {
		st, err := c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			err = fmt.Errorf("projection %s: status: %w", c.Name(), err)
			errs = append(errs, err)
			st = Status{Name: c.Name(), State: stateUnknown, LastError: truncate(err.Error())}
		}
		out = append(out, st)
	}
	return out, errors.Join(errs...)
}
