package projection

import (
	"context"
	"time"

	"github.com/annals/annals"
)

// The applier's one select. Whatever the applier waits for (a message
// read, a writer's request, the rebuild's builder caught up or ended, a
// change of phase, the lease's poll or a resubscription's pause, the end
// of its context) comes through await as one event; the applier turns it
// into a core input or carries out what the core decided. Which events
// it listens to is the core's decision too (listen): a paused applier
// reads no message, an idle one in a rebuild listens to the builder.

// event is what await saw.
type event uint8

const (
	evMessage event = iota // a message read (got.msg)
	evEnded                // the subscription returned
	evRequest              // a writer's request (got.req)
	evReady                // the rebuild's builder caught up
	evBuilt                // the rebuild's builder's run returned
	evChanged              // the phase changed
	evTimer                // the pause asked for passed
	evDone                 // the context ended
)

// got is one event and what it carries.
type got[M any] struct {
	ev  event
	msg annals.Message
	req request[M]
}

// sources are the channels await listens to besides the requests and
// the context; a nil one is not listened to.
type sources struct {
	msgs         <-chan annals.Message
	ended        <-chan struct{}
	ready, built <-chan struct{}
	changed      <-chan struct{}
	timer        <-chan time.Time
}

// after is sources with only a timer of d.
func after(d time.Duration) sources { return sources{timer: time.After(d)} }

// await waits for the first event of s, p's requests or ctx.
func (p *Projector[M]) await(ctx context.Context, s sources) got[M] {
	select {
	case m := <-s.msgs:
		return got[M]{ev: evMessage, msg: m}
	case <-s.ended:
		return got[M]{ev: evEnded}
	case req := <-p.requests:
		return got[M]{ev: evRequest, req: req}
	case <-s.ready:
		return got[M]{ev: evReady}
	case <-s.built:
		return got[M]{ev: evBuilt}
	case <-s.changed:
		return got[M]{ev: evChanged}
	case <-s.timer:
		return got[M]{ev: evTimer}
	case <-ctx.Done():
		return got[M]{ev: evDone}
	}
}

// listen is what a session's applier does next (machine.work) holding
// inHand messages, and, unless it applies, the sources it waits on: the
// phase's change while paused; the reader and the rebuild's builder
// while idle.
func (p *Projector[M]) listen(r *reader, inHand int) (work, sources) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch w := p.m.work(inHand); w {
	case workPaused:
		// The batch in hand waits (it is at most BatchEvents messages).
		return w, sources{changed: p.changed}
	case workIdle:
		s := sources{msgs: r.msgs, ended: r.done}
		if p.rb != nil && p.m.awaitsBuilder() {
			s.ready, s.built = p.rb.ready, p.rb.done
		}
		return w, s
	default:
		return w, sources{}
	}
}
