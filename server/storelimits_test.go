package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
)

// A server given no limits takes the store's: over a store that allows
// system streams, it serves the persistent subscriptions, which keep
// their state in them.
func TestServerTakesTheStoreLimits(t *testing.T) {
	store := memory.New(memory.Options{Limits: annals.Limits{AllowSystemStreams: true}})
	t.Cleanup(func() { store.Close() })
	addr := teststores.ServeStore(t, store, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	resp, err := serverfeatures.NewServerFeaturesClient(rawConn(t, addr)).GetSupportedMethods(ctx, &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.GetMethods() {
		if strings.Contains(m.GetServiceName(), "persistent") {
			return
		}
	}
	t.Fatalf("persistent subscriptions not advertised: %v", resp.GetMethods())
}

// New fails when the store refuses what it loads, rather than serving
// without it.
func TestNewFailsOnAStoreThatRefuses(t *testing.T) {
	store := memory.New(memory.Options{Limits: annals.Limits{AllowSystemStreams: true}})
	store.Close()
	srv, err := server.New(store, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, annals.ErrClosed) || srv != nil {
		t.Fatalf("New over a closed store: %v, %v; want annals.ErrClosed", srv, err)
	}
}
