package projection_test

import (
	"context"
	"errors"
	"testing"

	"github.com/annals/annals/projection"
)

// gatedLeaser is a memory target whose TryLease waits for the test:
// entered tells that a projector asks, and the answer waits for gate.
type gatedLeaser struct {
	*projection.Memory
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedLeaser) TryLease(ctx context.Context, name string) (projection.Lease, error) {
	select {
	case g.entered <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Memory.TryLease(ctx, name)
}

// A projector is on standby until it holds the lease, so that a caller
// that sees it running can act on it; an uncontended Start returns with
// it running, so that a Rebuild right after Start is not refused.
func TestStandbyUntilLease(t *testing.T) {
	store := newMemoryStore(t)
	appendEvents(t, store, 20, 0)
	g := &gatedLeaser{Memory: projection.NewMemory(), entered: make(chan struct{}), gate: make(chan struct{})}
	pr, err := projection.New[projection.KV](store, g, kvProjection("orders", nil), projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- pr.Start(context.Background()) }()
	defer pr.Stop()
	<-g.entered
	// Asking for the lease: not the writer yet.
	if st := state(t, pr); st.State != projection.Standby {
		t.Fatalf("before the lease: %s, want standby", st.State)
	}
	if err := pr.Rebuild(context.Background()); !errors.Is(err, projection.ErrStandby) {
		t.Fatalf("Rebuild before the lease: %v, want ErrStandby", err)
	}
	close(g.gate)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if st := state(t, pr); st.State != projection.Running {
		t.Fatalf("after Start with the lease: %s, want running", st.State)
	}
	if err := pr.Rebuild(context.Background()); err != nil {
		t.Fatalf("Rebuild right after Start: %v", err)
	}
	waitHead(t, store, pr)
	waitFor(t, "the rebuild to switch", func() bool { return state(t, pr).Generation == 1 })
}
