package projectiontest

import (
	"testing"

	"github.com/annals/annals/projection"
)

func (s *suite[M]) leaseCases() []testCase[M] {
	return []testCase[M]{
		{"OneHolder", s.testLeaseOneHolder},
		{"LostOnBrokenSession", s.testLeaseLost},
	}
}

func leaserOf[M any](t *testing.T, target projection.Target[M]) projection.Leaser {
	t.Helper()
	l, ok := target.(projection.Leaser)
	if !ok {
		t.Skip("the target is not a projection.Leaser: it has no leases")
	}
	return l
}

func tryLease(t *testing.T, l projection.Leaser, name string) projection.Lease {
	t.Helper()
	lease, err := l.TryLease(testContext(t), name)
	if err != nil {
		t.Fatalf("TryLease(%q): %v", name, err)
	}
	if lease != nil {
		t.Cleanup(lease.Release)
	}
	return lease
}

func wantHeld(t *testing.T, what string, lease projection.Lease) {
	t.Helper()
	if lease == nil {
		t.Fatalf("%s: TryLease returned no lease, want one", what)
	}
	select {
	case <-lease.Lost():
		t.Fatalf("%s: Lost is closed while the lease is held", what)
	default:
	}
}

// A projection's lease has one holder: a second TryLease gets none (and
// no error) while it is held, another projection's lease is apart, and
// Release (which may be called again) frees it.
func (s *suite[M]) testLeaseOneHolder(t *testing.T, target projection.Target[M]) {
	l := leaserOf(t, target)
	first := tryLease(t, l, "p")
	wantHeld(t, "the first TryLease(p)", first)
	if second := tryLease(t, l, "p"); second != nil {
		t.Fatal("a second TryLease(p) got the lease while the first holds it")
	}
	wantHeld(t, "TryLease(q) while p is held", tryLease(t, l, "q"))
	wantHeld(t, "the first lease of p, after a second asked", first)
	first.Release()
	first.Release()
	wantHeld(t, "TryLease(p) after Release", tryLease(t, l, "p"))
}

// A lease whose session breaks is Lost, and once given up the lease is
// free again. Needs Options.BreakLeases.
func (s *suite[M]) testLeaseLost(t *testing.T, target projection.Target[M]) {
	l := leaserOf(t, target)
	if s.opts.BreakLeases == nil {
		t.Skip("the target's leases cannot be broken from outside (Options.BreakLeases is nil)")
	}
	ctx := testContext(t)
	lease := tryLease(t, l, "p")
	wantHeld(t, "TryLease(p)", lease)
	s.opts.BreakLeases(t, target)
	select {
	case <-lease.Lost():
	case <-ctx.Done():
		t.Fatalf("Lost not closed %v after the lease's session broke", testTimeout)
	}
	lease.Release()
	// The broken session may leave broken connections behind: a
	// TryLease that fails on one is asked again.
	waitFor(t, "the lease to be free again", func() bool {
		again, err := l.TryLease(ctx, "p")
		if again != nil {
			again.Release()
		}
		return err == nil && again != nil
	})
}
