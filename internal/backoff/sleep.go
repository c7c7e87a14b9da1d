// Package backoff holds what retrying with a pause needs, for the command
// handler's conflict retries and the projectors' error policy. It is apart
// from internal/core, whose logic is free of IO and of clocks.
package backoff

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends (then it returns ctx's error): the
// pause between two retries, which a caller who gives up must not sit
// through.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
