package process

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/annals/annals"
)

// InstanceStatus is where one instance is, read from its stream.
type InstanceStatus struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	Steps     int       `json:"steps"`     // decided
	Done      int       `json:"done"`      // taken by their aggregates (and not undone)
	Undone    int       `json:"undone"`    // taken, then undone
	Abandoned int       `json:"abandoned"` // given up, not taken
	Retrying  int       `json:"retrying"`  // failed, to be sent again
	Timers    []Timer   `json:"timers,omitempty"`
	Error     string    `json:"error,omitempty"`     // why it compensates or failed
	LastError string    `json:"lastError,omitempty"` // the last failed attempt's
	Updated   time.Time `json:"updated"`             // when its last record was written
}

// Entry is one record of an instance's history.
type Entry struct {
	Revision annals.Revision `json:"revision"`
	Recorded time.Time       `json:"recorded"`
	Kind     string          `json:"kind"`
	Step     int             `json:"step"`
	Steps    int             `json:"steps,omitempty"` // of a decision
	Undo     bool            `json:"undo,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Report is a manager's status, read from its streams.
type Report struct {
	Manager    string           `json:"manager"`
	Checkpoint annals.Position  `json:"checkpoint"`
	Started    int              `json:"started"`
	Finished   int              `json:"finished"`
	Active     []InstanceStatus `json:"active"` // not finished, at most MaxReported
	// Failed are the instances failed and not retried or dismissed,
	// newest first, at most MaxReported, from their end records: ID,
	// Status, Error and Updated only (InspectInstance has the rest).
	Failed []InstanceStatus `json:"failed"`
	// Holder names the run that holds the manager's lease, or held it
	// last without releasing it (it may have ended since), renewed last
	// at LeaseRenewed; empty when no run holds it.
	Holder       string    `json:"holder,omitempty"`
	LeaseRenewed time.Time `json:"lease_renewed,omitzero"`
}

// MaxReported bounds the instances a Report details (and MaxHistory the
// entries of an instance's history): the others are counted only.
const (
	MaxReported = 1000
	MaxHistory  = 10_000
)

// ErrNoInstance is returned for an instance that has no stream.
var ErrNoInstance = errors.New("process: no such instance")

// Inspect reports on the manager named name: its checkpoint, its
// instances not finished, and the last to fail. It reads the store only,
// so it works beside a run, from any process.
func Inspect(ctx context.Context, store annals.Store, name string) (Report, error) {
	rep := Report{Manager: name, Active: []InstanceStatus{}, Failed: []InstanceStatus{}}
	lease, err := lastLease(ctx, store, leaseStream(name))
	if err != nil {
		return Report{}, err
	}
	if lease.found && !lease.rec.Released {
		rep.Holder, rep.LeaseRenewed = lease.rec.Holder, lease.recorded
	}
	// By id, with the revision that put them there: a manager's stream
	// may hold millions of starts and ends, each looked up once.
	active, failed := map[string]annals.Revision{}, map[string]InstanceStatus{}
	order := map[string]annals.Revision{}
	for ev, err := range store.ReadStream(ctx, streamPrefix+name, annals.ReadStreamOptions{}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return Report{}, err
		}
		var mr managerRecord
		if err := json.Unmarshal(ev.Data, &mr); err != nil {
			return Report{}, fmt.Errorf("process: %s at revision %d: %w", ev.Stream, ev.Revision, err)
		}
		switch mr.Kind {
		case "Started", "Reopened":
			if mr.Kind == "Started" {
				rep.Started++
			}
			active[mr.ID] = ev.Revision
			delete(failed, mr.ID)
		case "Dismissed":
			delete(failed, mr.ID)
		case "Finished":
			rep.Finished++
			delete(active, mr.ID)
			if mr.Status == Failed {
				failed[mr.ID], order[mr.ID] = InstanceStatus{ID: mr.ID, Status: Failed, Error: mr.Error, Updated: ev.Recorded}, ev.Revision
			}
		case "Checkpoint":
			rep.Checkpoint = mr.Position
		}
	}
	for _, id := range byRevision(failed, order, true) {
		rep.Failed = append(rep.Failed, failed[id])
	}
	for _, id := range byRevision(active, active, false) {
		st, _, err := InspectInstance(ctx, store, name, id)
		if errors.Is(err, ErrNoInstance) {
			// Started, its first decision not yet written.
			st, err = InstanceStatus{ID: id, Status: Running}, nil
		}
		if err != nil {
			return Report{}, err
		}
		rep.Active = append(rep.Active, st)
	}
	return rep, nil
}

// byRevision lists the ids of set in the order of their revisions (the
// newest first if newest), at most MaxReported.
func byRevision[V any](set map[string]V, at map[string]annals.Revision, newest bool) []string {
	ids := slices.Collect(maps.Keys(set))
	slices.SortFunc(ids, func(a, b string) int {
		if newest {
			a, b = b, a
		}
		return cmp.Compare(at[a], at[b])
	})
	return ids[:min(len(ids), MaxReported)]
}

// InspectInstance reports on one instance and its history (the first
// MaxHistory records).
func InspectInstance(ctx context.Context, store annals.Store, name, id string) (InstanceStatus, []Entry, error) {
	c, st, history := newCore(), InstanceStatus{ID: id}, []Entry{}
	stream := streamPrefix + name + "-" + id
	for ev, err := range store.ReadStream(ctx, stream, annals.ReadStreamOptions{}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			return InstanceStatus{}, nil, fmt.Errorf("%w: %s", ErrNoInstance, stream)
		}
		if err != nil {
			return InstanceStatus{}, nil, err
		}
		if !strings.HasPrefix(ev.Type, recordType) {
			continue // the process's own event
		}
		var r record
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			return InstanceStatus{}, nil, fmt.Errorf("process: %s at revision %d: %w", stream, ev.Revision, err)
		}
		if err := c.apply(r); err != nil {
			return InstanceStatus{}, nil, fmt.Errorf("process: %s at revision %d: %w", stream, ev.Revision, err)
		}
		if r.Kind == recStepFailed {
			st.LastError = r.Error
		}
		st.Updated = ev.Recorded
		if len(history) < MaxHistory {
			history = append(history, Entry{Revision: ev.Revision, Recorded: ev.Recorded, Kind: string(r.Kind),
				Step: r.Step, Steps: len(r.Steps), Undo: r.Undo, Error: r.Error})
		}
	}
	summarise(c, &st)
	return st, history, nil
}

func summarise(c *core, st *InstanceStatus) {
	st.Status, st.Error, st.Steps = c.status, c.err, len(c.steps)
	for _, s := range c.steps {
		switch {
		case s.State == stepDone:
			st.Done++
		case s.State == stepUndone:
			st.Undone++
		case s.State == stepAbandoned:
			st.Abandoned++
		case s.Attempts > 0:
			st.Retrying++
		}
	}
	if c.finished {
		return // its timers fire no more
	}
	for name, at := range c.timers {
		st.Timers = append(st.Timers, Timer{Name: name, At: at})
	}
	slices.SortFunc(st.Timers, func(a, b Timer) int { return a.At.Compare(b.At) })
}
