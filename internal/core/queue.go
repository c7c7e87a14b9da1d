package core

import (
	"context"

	"github.com/annals/annals"
)

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
