package core

import (
	"context"

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
	return sizeBytes, nil
}

// Submit hands req to a store's single writer through queue and waits for
// its answer (done closed). It returns annals.ErrClosed if the writer
// stopped first — quit closed before req was queued, or writerDone closed
// with req unanswered — and the context's error if the caller gave up. An
// append whose caller gave up after queueing may still be written: a
// retry with the same event ids is safe.
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
		return ctx.Err()
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
