package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An Append call the client closes before sending anything is a bad
// request, not an unknown error.
func TestAppendWithoutMessages(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := appendRaw(ctx, conn); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an append with no message: got %v, want InvalidArgument", err)
	}
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("%d events written", n)
	}
}
