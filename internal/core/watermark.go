package core

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/annals/annals"
)

// Watermark publishes the highest global position that is durable, and
// wakes waiters when it advances. Readers never look past it.
//
// Invariant: the published position never decreases.
type Watermark struct {
	pos    atomic.Uint64
	mu     sync.Mutex
	wake   chan struct{} // closed and replaced on each advance
	closed bool
}

// NewWatermark starts at pos.
func NewWatermark(pos annals.Position) *Watermark {
	w := &Watermark{wake: make(chan struct{})}
	w.pos.Store(uint64(pos))
	return w
}

// Load returns the durable position.
func (w *Watermark) Load() annals.Position { return annals.Position(w.pos.Load()) }

// Advance publishes pos and wakes every waiter.
func (w *Watermark) Advance(pos annals.Position) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pos < w.Load() {
		panic("core: watermark moved backwards")
	}
	if pos == w.Load() {
		return
	}
	w.pos.Store(uint64(pos))
	close(w.wake)
	w.wake = make(chan struct{})
}

// Close wakes every waiter for good; Wait then fails with ErrClosed.
func (w *Watermark) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.wake)
	}
}

// Wait blocks until the durable position is past after, and returns it.
func (w *Watermark) Wait(ctx context.Context, after annals.Position) (annals.Position, error) {
	for {
		w.mu.Lock()
		closed, wake := w.closed, w.wake
		w.mu.Unlock()
		if p := w.Load(); p > after {
			return p, nil
		}
		if closed {
			return 0, annals.ErrClosed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
