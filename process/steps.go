package process

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/annals/annals"
)

// instanceLimits judge an instance's stream name.
var instanceLimits = annals.Limits{}.WithDefaults()

// take decides one event of $all, then moves the checkpoint past it.
func (r *run[S, E]) take(ctx context.Context, ev annals.Event) error {
	if !r.skips(ev) {
		if id, ok := r.m.Correlate(ev); ok {
			if err := instanceLimits.CheckNewStreamName(r.m.instanceStream(id)); id == "" || err != nil {
				// An id no stream can be named by: the event is left
				// alone, and the run goes on.
				r.opts.Logger.Warn("process: an event names an instance that cannot be", "manager", r.m.Name,
					"stream", ev.Stream, "position", ev.Position, "id", id, "err", err)
			} else if err := r.decideEvent(ctx, id, &ev); err != nil {
				return err
			}
		}
	}
	r.position = ev.Position
	if r.taken++; r.taken >= r.opts.CheckpointEvents {
		r.taken = 0
		return r.appendManager(ctx, managerRecord{Kind: "Checkpoint", Position: r.position})
	}
	return nil
}

func (r *run[S, E]) decideEvent(ctx context.Context, id string, ev *annals.Event) error {
	in := r.active[id]
	if in == nil {
		loaded, err := r.m.load(ctx, r.store, id)
		if err != nil {
			return err
		}
		if loaded.core.finished {
			return nil // a finished instance takes nothing more
		}
		in = loaded
	}
	if !in.core.takes(ev.Position) {
		return nil
	}
	if in.fresh {
		if len(r.active) >= MaxActiveInstances {
			return fmt.Errorf("process: %d instances of %s are not finished, at most %d", len(r.active), r.m.Name, MaxActiveInstances)
		}
		if err := r.appendManager(ctx, managerRecord{Kind: "Started", ID: id}); err != nil {
			return err
		}
		r.active[id] = in
	}
	return r.decide(ctx, in, ev.Position, "", Input{Event: ev, Now: r.opts.Now()})
}

// decide asks the process about one input and records its decision.
func (r *run[S, E]) decide(ctx context.Context, in *instance[S], p annals.Position, timer string, input Input) error {
	events, d, err := r.m.Decide(in.state, input)
	var rec record
	if err == nil {
		rec, err = in.core.decided(p, timer, d)
	}
	if err != nil {
		r.opts.Logger.Warn("process: the decision failed the instance", "manager", r.m.Name, "instance", in.id, "err", err)
		events, rec = nil, record{Kind: recFailed, Error: fmt.Sprintf("deciding: %v", err)}
	}
	if err := r.m.write(ctx, r.store, in, events, []record{rec}); err != nil {
		return err
	}
	r.dirty[in.id] = true
	return r.settle(ctx, in)
}

// settle writes the record the instance's state calls for (done, failed)
// and, once it is finished, its end in the manager's stream.
func (r *run[S, E]) settle(ctx context.Context, in *instance[S]) error {
	if rec, ok := in.core.settle(len(in.inFlight)); ok {
		if err := r.m.write(ctx, r.store, in, nil, []record{rec}); err != nil {
			return err
		}
	}
	if !in.core.finished {
		return nil
	}
	if in.core.status == Failed {
		r.opts.Logger.Warn("process: an instance failed", "manager", r.m.Name, "instance", in.id, "err", in.core.err)
	}
	delete(r.active, in.id)
	return r.appendManager(ctx, managerRecord{Kind: "Finished", ID: in.id, Status: in.core.status, Error: in.core.err})
}

func (r *run[S, E]) appendManager(ctx context.Context, mr managerRecord) error {
	b, err := json.Marshal(mr)
	if err != nil {
		return err
	}
	wctx, cancel := writeContext(ctx)
	defer cancel()
	res, err := r.store.Append(wctx, r.m.managerStream(), r.next, annals.EventData{Type: recordType + mr.Kind, Data: b})
	if err != nil {
		return fmt.Errorf("process: writing %s: %w", r.m.managerStream(), err)
	}
	r.next = res.NextExpected
	return nil
}

// pump advances the instances that changed or whose time came: fires
// their due timers and starts their sends. It returns when to pump again
// for a timer or a retry (zero: on the next input).
func (r *run[S, E]) pump(ctx context.Context) (time.Time, error) {
	now := r.opts.Now()
	for r.wakes.Len() > 0 && !r.wakes[0].at.After(now) {
		w := heap.Pop(&r.wakes).(wake)
		if in := r.active[w.id]; in != nil && in.wake.Equal(w.at) {
			in.wake, r.dirty[w.id] = time.Time{}, true
		}
	}
	for id := range r.dirty {
		delete(r.dirty, id)
		if in := r.active[id]; in != nil {
			if err := r.advance(ctx, in, now); err != nil {
				return time.Time{}, err
			}
		}
	}
	if r.wakes.Len() > 0 {
		return r.wakes[0].at, nil
	}
	return time.Time{}, nil
}

func (r *run[S, E]) advance(ctx context.Context, in *instance[S], now time.Time) error {
	for _, name := range in.core.dueTimers(now) {
		if err := r.decide(ctx, in, 0, name, Input{Timer: name, Now: now}); err != nil {
			return err
		}
		if in.core.finished {
			return nil
		}
	}
	sends, next := in.core.ready(r.m.Policy, in.inFlight, now)
	for _, s := range sends {
		if r.sending >= MaxSending {
			r.starved[in.id] = true
			break
		}
		in.inFlight[s.Step] = true
		r.sending++
		go r.send(ctx, in.id, in.stream, s)
	}
	if !next.IsZero() && !next.Equal(in.wake) {
		// One wake an instance at a time (the latest asked for), so the
		// heap holds at most a wake per advance of an instance since its
		// last came due, and stale ones are dropped when they do.
		in.wake = next
		heap.Push(&r.wakes, wake{at: next, id: in.id})
	}
	return nil
}

// send sends one command (or its undo, or a probe) and reports the answer
// to the loop.
func (r *run[S, E]) send(ctx context.Context, id, stream string, s send) {
	// Not cancelled with the run: a command abandoned midway might be
	// applied after the run ended, under a probe of the next run.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.SendTimeout)
	var a answer
	if s.Probe {
		a.Taken, a.Err = r.d.Taken(sctx, s.Command, commandKey(stream, s.Step, false, s.Gen))
	} else {
		a.Err = r.d.Send(sctx, s.Command, commandKey(stream, s.Step, s.Undo, s.Gen))
		a.Permanent = errors.Is(a.Err, ErrRefused)
	}
	cancel()
	r.results <- result{id: id, send: s, answer: a}
}

// answered records the answers waiting, each instance's in one append
// where it can.
func (r *run[S, E]) answered(ctx context.Context, first result) error {
	batch := map[string][]result{first.id: {first}}
	order := []string{first.id}
	r.sending--
	for n := 1; n < MaxInFlight; n++ {
		select {
		case res := <-r.results:
			r.sending--
			if batch[res.id] == nil {
				order = append(order, res.id)
			}
			batch[res.id] = append(batch[res.id], res)
			continue
		default:
		}
		break
	}
	for _, id := range order {
		if in := r.active[id]; in != nil {
			if err := r.record(ctx, in, batch[id]); err != nil {
				return err
			}
		}
	}
	for id := range r.starved {
		r.dirty[id] = true
		delete(r.starved, id)
	}
	return nil
}

// record writes the outcomes of one instance's answers: together, but a
// record that changes where the instance is (compensating, failed) ends a
// write, so that the next answers are judged after it.
func (r *run[S, E]) record(ctx context.Context, in *instance[S], results []result) error {
	now := r.opts.Now()
	var recs []record
	for _, res := range results {
		delete(in.inFlight, res.send.Step)
		if in.core.finished {
			continue
		}
		if res.answer.Err != nil {
			r.opts.Logger.Warn("process: a command failed", "manager", r.m.Name, "instance", in.id,
				"step", res.send.Step, "command", res.send.Command.Type, "stream", res.send.Command.Stream, "err", res.answer.Err)
		}
		rec := in.core.outcome(res.send, res.answer, r.m.Policy, now)
		recs = append(recs, rec)
		if rec.Kind == recCompensating || rec.Kind == recFailed {
			if err := r.m.write(ctx, r.store, in, nil, recs); err != nil {
				return err
			}
			recs = nil
		}
	}
	if len(recs) > 0 {
		if err := r.m.write(ctx, r.store, in, nil, recs); err != nil {
			return err
		}
	}
	r.dirty[in.id] = true
	return r.settle(ctx, in)
}

// wake is when an instance asks to be advanced again.
type wake struct {
	at time.Time
	id string
}

// wakeHeap orders wakes by time. An instance may have stale wakes in it;
// advancing it early does nothing it should not.
type wakeHeap []wake

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(wake)) }
func (h *wakeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}
