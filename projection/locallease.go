package projection

import "sync"

// localLeases are the leases of a target that one process has to itself
// (in-memory, pebble: its directory is locked by the process that opens
// it), so one instance at a time in the process is one instance at a
// time: a second Projector of a name waits on Standby, as on PostgreSQL.
type localLeases struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLease takes the named projection's lease if no Projector of this
// target holds it.
func (l *localLeases) tryLease(name string) Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return nil
	}
	if l.held == nil {
		l.held = make(map[string]bool)
	}
	l.held[name] = true
	return &localLease{leases: l, name: name}
}

type localLease struct {
	leases *localLeases
	name   string
	once   sync.Once
}

// Lost is never closed: the process that holds a local lease cannot be
// cut off from its target.
func (*localLease) Lost() <-chan struct{} { return nil }

func (l *localLease) Release() {
	l.once.Do(func() {
		l.leases.mu.Lock()
		defer l.leases.mu.Unlock()
		delete(l.leases.held, l.name)
	})
}
