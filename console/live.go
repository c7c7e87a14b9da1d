package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/annals/annals"
)

// serveLive sends the events appended to $all from now on (filtered as
// serveAll's), as server-sent events, until the browser goes or
// liveTailEvents were sent.
func (c *console) serveLive(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	select {
	case c.tails <- struct{}{}:
		defer func() { <-c.tails }()
	default:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d live tails are open already; close one", MaxLiveTails))
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "this connection cannot stream")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	t := &tail{w: w, flush: flusher.Flush, filter: f, store: c.opts.Store}
	t.run(r.Context())
}

// A tail follows $all in rounds. A round subscribes from the end and
// sends what comes until it has sent liveTailEventsPerSecond events within
// a second; it then lets go of the subscription, waits out the second,
// and the next round starts from the end again. So a busy store costs a
// tail about liveTailEventsPerSecond reads a second, not one per event
// appended: the events a tail passes over are never read. Each gap is
// reported as the positions it lies between.
type tail struct {
	w      interface{ Write([]byte) (int, error) }
	flush  func()
	filter *annals.Filter
	store  annals.Store
	last   annals.Position // of the last event sent; 0 before the first
	sent   int
}

func (t *tail) run(ctx context.Context) {
	for t.sent < liveTailEvents {
		resume, err := t.round(ctx)
		if err != nil {
			return // the browser went, or the store closed: it reconnects
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(resume)):
		}
	}
}

// round sends events from the end of $all until the second's budget is
// spent, and says when the next round may start.
func (t *tail) round(ctx context.Context) (resume time.Time, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var second time.Time // the start of the current second
	inSecond, first := 0, true
	for msg, err := range t.store.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: annals.End, Filter: t.filter}) {
		if err != nil {
			return time.Time{}, err
		}
		if msg.Kind != annals.MessageEvent {
			continue
		}
		pos := msg.Event.Position
		if first && t.last > 0 && pos > t.last+1 {
			fmt.Fprintf(t.w, "event: skipped\ndata: {\"after\":%d,\"before\":%d}\n\n", t.last, pos)
		}
		first = false
		if err := t.send(msg.Event); err != nil {
			return time.Time{}, err
		}
		if now := time.Now(); now.Sub(second) >= time.Second {
			second, inSecond = now, 0
		}
		if inSecond++; inSecond >= liveTailEventsPerSecond || t.sent >= liveTailEvents {
			return second.Add(time.Second), nil
		}
	}
	return time.Time{}, errTailEnded // the store closed the subscription
}

var errTailEnded = errors.New("the subscription ended")

func (t *tail) send(e annals.Event) error {
	b, _ := json.Marshal(view(e, previewBytes))
	if _, err := fmt.Fprintf(t.w, "data: %s\n\n", b); err != nil {
		return err
	}
	t.flush()
	t.last, t.sent = e.Position, t.sent+1
	return nil
}
