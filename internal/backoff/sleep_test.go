package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

// hangGuard is far above any pause these tests wait through.
const hangGuard = time.Hour

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, hangGuard); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep with an ended context: %v, want context.Canceled", err)
	}
}

func TestSleepWaitsOut(t *testing.T) {
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0): %v", err)
	}
}
