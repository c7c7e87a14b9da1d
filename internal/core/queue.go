package core

import (
	"context"
	"fmt"
	"sync"

	"github.com/annals/annals"
)

// Admit checks an append before it queues for a store's writer — the
// caller still waits, the operation is valid under l — and returns its
// size in bytes, which the writer's groups are bounded by.
func Admit(ctx context.Context, l annals.Limits, op *Op) (sizeBytes int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := Validate(l, op); err != nil {
		return 0, err
	}
	for i := range op.Events {
		sizeBytes += annals.EventSizeBytes(&op.Events[i])
	}
	if op.Kind == OpMulti {
		for i := range op.Multi.Records {
			sizeBytes += annals.EventSizeBytes(&op.Multi.Records[i].Event)
		}
	}
	return sizeBytes, nil
}

// Submit hands req to a store's single writer through queue and waits for
// its answer (done closed). It returns annals.ErrClosed if the writer
// stopped first — quit closed before req was queued, or writerDone closed
// with req unanswered — and the context's error if the caller gave up
// before req was queued (nothing written). A caller that gives up after
// that gets annals.OutcomeUnknown of the context's error: the writer may
// already have taken req into a group that commits.
func Submit[R any](ctx context.Context, queue chan<- R, req R, done, quit, writerDone <-chan struct{}) error {
	select {
	case queue <- req:
	case <-quit:
		return annals.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-writerDone:
		select {
		case <-done:
			return nil
		default:
			return annals.ErrClosed
		}
	case <-ctx.Done():
		select {
		case <-done:
			// Answered as the caller gave up: the answer is known.
			return nil
		default:
			return annals.OutcomeUnknown(ctx.Err())
		}
	}
}

// Collect takes first and whatever else is already queued, up to maxOps
// requests or until their sizes reach maxBytes: one group for a writer. It
// never waits.
func Collect[R any](queue <-chan R, first R, sizeBytes func(R) int, maxOps, maxBytes int) []R {
	reqs := []R{first}
	bytes := sizeBytes(first)
	for len(reqs) < maxOps && bytes < maxBytes {
		select {
		case r := <-queue:
			reqs = append(reqs, r)
			bytes += sizeBytes(r)
		default:
			return reqs
		}
	}
	return reqs
}

// Refuse answers every request still queued with refuse, without waiting:
// a stopping writer's last act, so no caller waits forever.
func Refuse[R any](queue <-chan R, refuse func(R)) {
	for {
		select {
		case r := <-queue:
			refuse(r)
		default:
			return
		}
	}
}

// Request is one write waiting for a store's writer: what to write, and the
// answer the writer leaves before it calls Answer.
type Request struct {
	// Ctx is the caller's: a writer may answer with its error a request
	// whose caller gave up before it was planned (nothing of it written).
	Ctx    context.Context
	Op     *Op
	Bytes  int // the op's size (Admit)
	Result annals.AppendResult
	Err    error
	done   chan struct{}
}

// Answer hands r's Result and Err to its caller. Each request is answered
// once: a second answer panics.
func (r *Request) Answer() { close(r.done) }

// Fail answers r with err alone.
func (r *Request) Fail(err error) {
	r.Result, r.Err = annals.AppendResult{}, err
	r.Answer()
}

// Queue is the way from a store's callers to its single writer goroutine:
// the bounded queue of requests, the group bounds, and the stop.
//
// The writer takes requests from Requests until Quit is closed, then calls
// Stopped; Stop, called by the store's Close, waits for that. Every request
// a caller queued is answered, or its caller gets ErrClosed.
type Queue struct {
	limits           annals.Limits
	maxOps, maxBytes int // one group's bounds
	requests         chan *Request
	quit             chan struct{} // closed by Stop: the writer stops taking requests
	writerDone       chan struct{} // closed by Stopped: every accepted request has its answer
	stop             sync.Once
}

// NewQueue makes a queue of length requests whose groups hold at most
// groupOps requests, and stop growing once they reach groupBytes.
func NewQueue(l annals.Limits, length, groupOps, groupBytes int) *Queue {
	return &Queue{
		limits: l, maxOps: groupOps, maxBytes: groupBytes,
		requests:   make(chan *Request, length),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// Write admits op, queues it for the writer and waits for its answer (see
// Submit for the errors of a stopped writer or a caller that gave up).
func (q *Queue) Write(ctx context.Context, op *Op) (annals.AppendResult, error) {
	size, err := Admit(ctx, q.limits, op)
	if err != nil {
		return annals.AppendResult{}, err
	}
	r := &Request{Ctx: ctx, Op: op, Bytes: size, done: make(chan struct{})}
	if err := Submit(ctx, q.requests, r, r.done, q.quit, q.writerDone); err != nil {
		return annals.AppendResult{}, err
	}
	return r.Result, r.Err
}

// Requests is where the writer takes the next request.
func (q *Queue) Requests() <-chan *Request { return q.requests }

// Quit is closed when the writer is to stop taking requests.
func (q *Queue) Quit() <-chan struct{} { return q.quit }

// Queued is the number of requests waiting.
func (q *Queue) Queued() int { return len(q.requests) }

// Collect takes first and whatever else is already queued, within the
// group bounds: one group. It never waits.
func (q *Queue) Collect(first *Request) []*Request {
	return Collect(q.requests, first, requestBytes, q.maxOps, q.maxBytes)
}

func requestBytes(r *Request) int { return r.Bytes }

// GroupBytes is the size of a group's ops.
func GroupBytes(reqs []*Request) (n int) {
	for _, r := range reqs {
		n += r.Bytes
	}
	return n
}

// AnswerAll answers every request of a group.
func AnswerAll(reqs []*Request) {
	for _, r := range reqs {
		r.Answer()
	}
}

// FailAll answers every request of a group with err.
func FailAll(reqs []*Request, err error) {
	for _, r := range reqs {
		r.Fail(err)
	}
}

// Stopped is the writer's last act, once Quit is closed and every request
// it took has its answer: it refuses what is still queued with ErrClosed
// and lets Stop return. A writer that stops by panicking (a failed fsync)
// must not call it: waiters would answer ErrClosed for appends that a
// restart may yet show as written.
func (q *Queue) Stopped() {
	Refuse(q.requests, func(r *Request) { r.Fail(annals.ErrClosed) })
	close(q.writerDone)
}

// Stop tells the writer to stop and waits until it has: appends not yet
// taken fail with ErrClosed, those taken get their answers. Safe to call
// more than once.
func (q *Queue) Stop() {
	q.stop.Do(func() { close(q.quit) })
	<-q.writerDone
}

// Gate keeps a store's engine (a pebble DB, a connection pool) open while
// reads use it: reads hold it shared, and Shut waits for them before the
// store closes the engine, so no read meets a closed one.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Use runs fn with the engine open, or fails with ErrClosed.
func (g *Gate) Use(fn func() error) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return annals.ErrClosed
	}
	return fn()
}

// Exclusive runs fn while no read uses the engine: to swap it.
func (g *Gate) Exclusive(fn func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fn()
}

// Shut waits for the reads in progress and turns later ones away with
// ErrClosed.
func (g *Gate) Shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Default sets *v to d if it is zero or negative: an option's default.
func Default[T ~int | ~int32 | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Assert panics with the formatted message if ok is false. Call it behind
// Invariants, so the check and its arguments cost nothing in a normal
// build:
//
//	if core.Invariants {
//		core.Assert(wm.Load() >= g.lastPos, "answered before durable: %d", g.lastPos)
//	}
func Assert(ok bool, format string, args ...any) {
	if !ok {
		panic(brokenPrefix + fmt.Sprintf(format, args...))
	}
}

const brokenPrefix = "invariant broken: "
