package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/annals/annals"
)

// An operator controls a manager's instances by appending to its control
// stream ("process.<Name>.control"); the run takes each control event
// once, in order, beside the events of $all. So Retry and Abandon work
// from any process (a command line, a console) while the run goes on, and
// never write the streams the run writes.

// ErrNotApplicable is returned for a retry of an instance that has not
// failed, or an abandon of one already abandoned.
var ErrNotApplicable = errors.New("process: the instance is not in a state this applies to")

type controlEvent struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

func controlStream(name string) string { return streamPrefix + name + ".control" }

// Retry asks the run of manager name to run the failed instance id again:
// the steps not done are sent again (see the package documentation).
func Retry(ctx context.Context, store annals.Store, name, id string) error {
	st, _, err := InspectInstance(ctx, store, name, id)
	if err != nil {
		return err
	}
	if st.Status != Failed {
		return fmt.Errorf("%w: retry an instance %s (only a failed one)", ErrNotApplicable, st.Status)
	}
	return appendControl(ctx, store, name, "Retry", controlEvent{ID: id})
}

// Abandon asks the run of manager name to give up the instance id: one
// not finished fails with reason and sends nothing more; one that failed
// leaves the list of failed instances.
func Abandon(ctx context.Context, store annals.Store, name, id, reason string) error {
	if _, _, err := InspectInstance(ctx, store, name, id); err != nil {
		return err
	}
	if reason == "" {
		reason = "abandoned by an operator"
	}
	return appendControl(ctx, store, name, "Abandon", controlEvent{ID: id, Reason: reason})
}

func appendControl(ctx context.Context, store annals.Store, name, kind string, ce controlEvent) error {
	b, err := json.Marshal(ce)
	if err != nil {
		return err
	}
	_, err = store.Append(ctx, controlStream(name), annals.Any, annals.EventData{Type: recordType + kind, Data: b})
	return err
}

// followControl feeds the control events after the last taken to the loop.
func (r *run[S, E]) followControl(ctx context.Context, out chan<- annals.Event, errs chan<- error) {
	var from annals.Revision // Start
	if r.controls > 0 {
		from = annals.Revision(r.controls)
	}
	sub := r.store.SubscribeToStream(ctx, controlStream(r.m.Name), annals.SubscribeStreamOptions{From: from})
	forward(ctx, sub, "the control stream", out, errs)
}

// control takes one control event, then records it taken.
func (r *run[S, E]) control(ctx context.Context, ev annals.Event) error {
	mark := uint64(ev.Revision) + 1
	var ce controlEvent
	if err := json.Unmarshal(ev.Data, &ce); err != nil || ce.ID == "" {
		r.opts.Logger.Warn("process: a control event without an instance", "manager", r.m.Name, "revision", ev.Revision)
	} else if err := r.controlInstance(ctx, ev.Type, ce, mark); err != nil {
		return err
	}
	r.controls = mark
	return r.appendManager(ctx, managerRecord{Kind: "Control", Control: mark})
}

func (r *run[S, E]) controlInstance(ctx context.Context, kind string, ce controlEvent, mark uint64) error {
	in := r.active[ce.ID]
	if in == nil {
		loaded, err := r.m.load(ctx, r.store, ce.ID)
		if err != nil {
			return err
		}
		in = loaded
	}
	if in.fresh || in.core.control >= mark {
		return nil // no such instance, or taken before a crash
	}
	switch {
	case kind == recordType+"Retry" && in.core.status == Failed:
		if err := r.m.write(ctx, r.store, in, nil, []record{{Kind: recRetried, Control: mark}}); err != nil {
			return err
		}
		r.active[in.id], r.dirty[in.id] = in, true
		if err := r.appendManager(ctx, managerRecord{Kind: "Reopened", ID: in.id}); err != nil {
			return err
		}
		return r.settle(ctx, in)
	case kind == recordType+"Abandon" && !in.core.finished:
		if err := r.m.write(ctx, r.store, in, nil, []record{{Kind: recFailed, Error: ce.Reason, Control: mark}}); err != nil {
			return err
		}
		return r.settle(ctx, in)
	case kind == recordType+"Abandon" && in.core.status == Failed:
		return r.appendManager(ctx, managerRecord{Kind: "Dismissed", ID: in.id})
	}
	r.opts.Logger.Warn("process: a control event that does not apply", "manager", r.m.Name, "instance", in.id,
		"control", kind, "status", in.core.status)
	return nil
}
