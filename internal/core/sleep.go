package core

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
