package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/annals/annals"
)

// An append given up when the writer's own retry window runs out fails
// with ErrNotWritten, and not with context.DeadlineExceeded: that reads as
// the caller's deadline (a server answers DeadlineExceeded with KurrentDB's
// Timeout), and the caller's context had time left. A window of a
// nanosecond runs out before the group's first connection is acquired.
func TestRetryWindowIsNotTheCallersDeadline(t *testing.T) {
	t.Parallel()
	admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := Open(ctx, testDSN(), Options{Schema: testSchema(t), MaxConns: 2, Logger: quietLogger(), RetryWindow: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	_, err = s.Append(ctx, "window-1", annals.Any, annals.EventData{Type: "Lost"})
	if !errors.Is(err, ErrNotWritten) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append past the retry window: %v; want ErrNotWritten, not context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's deadline passed")
	}
}
