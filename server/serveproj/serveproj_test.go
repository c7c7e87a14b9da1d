package serveproj

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
)

// The server's bounds are the projection package's, which it does not
// import.
func TestServerBoundsAreTheProjections(t *testing.T) {
	if server.MaxProjectionNameBytes != projection.MaxNameBytes {
		t.Errorf("server.MaxProjectionNameBytes %d, projection.MaxNameBytes %d", server.MaxProjectionNameBytes, projection.MaxNameBytes)
	}
	if server.ProjectionsPath != projection.APIPrefix {
		t.Errorf("server.ProjectionsPath %q, projection.APIPrefix %q", server.ProjectionsPath, projection.APIPrefix)
	}
}

// A projector's refusals reach the server as its kinds, with their
// messages; other errors as they are.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind error
	}{
		{projection.ErrNoReset, server.ErrProjectionRefused},
		{projection.ErrStandby, server.ErrProjectionRefused},
		{projection.ErrRunning, server.ErrProjectionRefused},
		{projection.ErrNotRunning, server.ErrProjectionRefused},
		{projection.ErrFailed, server.ErrProjectionRefused},
		{projection.ErrRebuilding, server.ErrProjectionRefused},
		{projection.ErrGenerationMoved, server.ErrProjectionRefused},
		{projection.ErrInvalid, server.ErrProjectionInvalid},
		{annals.ErrClosed, nil},
		{context.Canceled, nil},
	} {
		err := fmt.Errorf("projection orders: %w", tc.err)
		got := classify(err)
		if got.Error() != err.Error() || !errors.Is(got, tc.err) {
			t.Errorf("%v: classified as %v, which lost the error", err, got)
		}
		for _, kind := range []error{server.ErrProjectionRefused, server.ErrProjectionInvalid} {
			if errors.Is(got, kind) != (kind == tc.kind) {
				t.Errorf("%v: errors.Is(%v) = %v", err, kind, !(kind == tc.kind))
			}
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is not nil")
	}
}
