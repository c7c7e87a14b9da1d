package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/annals/annals"
)

// recordType is the event type of a record in an instance's stream. The
// process's own events must not use the prefix.
const recordType = "process."

// instance is one instance in memory: its core, the process's state, and
// the revision its stream is at.
type instance[S any] struct {
	id, stream string
	core       *core
	state      S
	next       annals.ExpectedRevision
	inFlight   map[int]bool
	fresh      bool      // no record yet: its start is not in the manager's stream
	wake       time.Time // when the run advances it again, if no input comes first
}

// load reads the instance with id from its stream (a new one if the
// stream is empty).
func (m *Manager[S, E]) load(ctx context.Context, store annals.Store, id string) (*instance[S], error) {
	in := &instance[S]{id: id, stream: m.instanceStream(id), core: newCore(), state: m.Initial(),
		next: annals.NoStream, inFlight: map[int]bool{}, fresh: true}
	for ev, err := range store.ReadStream(ctx, in.stream, annals.ReadStreamOptions{}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		in.next = annals.Exact(ev.Revision)
		if err := m.fold(in, ev); err != nil {
			return nil, fmt.Errorf("process: %s at revision %d: %w", in.stream, ev.Revision, err)
		}
	}
	return in, nil
}

// fold takes one event of an instance's stream: a record into the core,
// or the process's own event into its state.
func (m *Manager[S, E]) fold(in *instance[S], ev annals.Event) error {
	if strings.HasPrefix(ev.Type, recordType) {
		var r record
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			return err
		}
		in.fresh = false
		return in.core.apply(r)
	}
	e, ok, err := m.Codec.Decode(ev)
	if err != nil || !ok {
		return err
	}
	in.state = m.Evolve(in.state, e)
	return nil
}

// write appends the process's events and the records to the instance's
// stream at the revision it was read at, then folds them. An append that
// fails leaves the instance as it was in the store but not in memory: the
// runner stops, and a new run reads it again.
func (m *Manager[S, E]) write(ctx context.Context, store annals.Store, in *instance[S], events []E, recs []record) error {
	recs = split(recs)
	data := make([]annals.EventData, 0, len(events)+len(recs))
	for _, e := range events {
		d, err := m.Codec.Encode(e)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Type, recordType) {
			return fmt.Errorf("process: the event type %q begins with %q, which is the manager's", d.Type, recordType)
		}
		data = append(data, d)
	}
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		data = append(data, annals.EventData{Type: recordType + string(r.Kind), Data: b})
	}
	wctx, cancel := writeContext(ctx)
	defer cancel()
	res, err := store.Append(wctx, in.stream, in.next, data...)
	if err != nil {
		return fmt.Errorf("process: writing %s: %w", in.stream, err)
	}
	in.next = res.NextExpected
	for _, e := range events {
		in.state = m.Evolve(in.state, e)
	}
	for _, r := range recs {
		if err := in.core.apply(r); err != nil {
			return fmt.Errorf("process: %s: %w", in.stream, err)
		}
	}
	in.fresh = false
	return nil
}

// WriteTimeout bounds one write of a run to the store.
const WriteTimeout = 30 * time.Second

// writeContext is ctx without its cancellation, within WriteTimeout: a
// write that has begun is seen to its end, so that its outcome is known.
// A write abandoned midway might land after the run ended, under the next
// run's reads, and that run's next write would conflict with it.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), WriteTimeout)
}
