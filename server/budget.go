package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Bounds on the appends the server is receiving or writing, over all
// connections and calls (Append and BatchAppend alike). An append's event
// bytes (type, data and metadata, as the store counts them) are held from
// the message that brings them until the append is answered.
const (
	// DefaultMaxAppendBytesInProgress bounds the event bytes all appends
	// in progress hold (Options.MaxAppendBytesInProgress).
	DefaultMaxAppendBytesInProgress = 256 << 20
	// AppendRoomWait is how long an append waits for room under that
	// bound, not reading its client's further messages (gRPC flow control
	// then holds the client), before it fails with ResourceExhausted.
	AppendRoomWait = 10 * time.Second
	// AppendReceiveTimeout is how long an append may take to arrive, from
	// its first message to its last (an Append's end, a BatchAppend
	// append's final chunk); a slower one fails with DeadlineExceeded and
	// its bytes are let go.
	AppendReceiveTimeout = 60 * time.Second
	// AppendWaitingBytesMax bounds the bytes of the messages that appends
	// waiting for room hold (received, not yet admitted); one more
	// waiting append fails at once. Memory held by appends is thus at most
	// MaxAppendBytesInProgress + AppendWaitingBytesMax, besides the
	// messages gRPC is still receiving.
	AppendWaitingBytesMax = 64 << 20
	// streamWindowBytes is each call's HTTP/2 receive window: what a
	// client may send on a call before the server reads it. Fixed (gRPC's
	// default grows it to 16 MiB), so a call that does not read, such as
	// an append waiting for room, holds at most this much unread.
	streamWindowBytes = 64 << 10
	// connWindowBytes is a connection's HTTP/2 receive window; the server
	// renews it as data arrives, so it bounds bytes in transit, not held.
	connWindowBytes = 16 << 20
)

// appendLimits are the bounds above as a server applies them (tests shrink
// them).
type appendLimits struct {
	maxBytes       int
	roomWait       time.Duration
	receiveTimeout time.Duration
	// onWait, if set, runs when an append begins to wait for room.
	onWait func()
}

// appendBudget counts the bytes appends in progress hold.
type appendBudget struct {
	lim     appendLimits
	mu      sync.Mutex
	held    int
	waiting int           // bytes of the appends waiting for room
	freed   chan struct{} // closed, and replaced, when bytes are let go
}

func newAppendBudget(lim appendLimits) *appendBudget {
	return &appendBudget{lim: lim, freed: make(chan struct{})}
}

// errBusy is an append refused for want of room.
type errBusy struct{ max int }

func (e *errBusy) Error() string {
	return fmt.Sprintf("the server is busy: appends in progress hold its limit of %d bytes; retry later", e.max)
}

// GRPCStatus is what gRPC sends for it.
func (e *errBusy) GRPCStatus() *status.Status { return status.New(codes.ResourceExhausted, e.Error()) }

// acquire takes n bytes, waiting up to lim.roomWait for room; it fails
// with *errBusy, or ctx's error.
func (a *appendBudget) acquire(ctx context.Context, n int) error {
	var timer *time.Timer
	for {
		a.mu.Lock()
		if a.held+n <= a.lim.maxBytes || a.held == 0 {
			// Alone, an append the store's limits admit always fits.
			a.held += n
			a.mu.Unlock()
			return nil
		}
		freed := a.freed
		a.mu.Unlock()
		if timer == nil {
			if !a.wait(n) {
				return &errBusy{max: a.lim.maxBytes}
			}
			defer a.wait(-n)
			timer = time.NewTimer(a.lim.roomWait)
			defer timer.Stop()
			if a.lim.onWait != nil {
				a.lim.onWait()
			}
		}
		select {
		case <-freed:
		case <-timer.C:
			return &errBusy{max: a.lim.maxBytes}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wait counts the n bytes of an append beginning (n > 0) or ending (n <
// 0) a wait for room; it reports false if there is no room to wait.
func (a *appendBudget) wait(n int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n > 0 && a.waiting > 0 && a.waiting+n > AppendWaitingBytesMax {
		return false
	}
	a.waiting += n
	return true
}

// release lets n bytes go.
func (a *appendBudget) release(n int) {
	if n == 0 {
		return
	}
	a.mu.Lock()
	a.held -= n
	close(a.freed)
	a.freed = make(chan struct{})
	a.mu.Unlock()
}
