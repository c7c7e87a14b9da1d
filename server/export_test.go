package server

import (
	"testing"
	"time"
)

// SetAuthClock replaces the authentication throttle's clock for the test.
func SetAuthClock(t *testing.T, now func() time.Time) {
	authClock = now
	t.Cleanup(func() { authClock = time.Now })
}
