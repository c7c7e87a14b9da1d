package projection

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/annals/annals"
)

// Memory is the in-memory target: a KV read model per projection and the
// checkpoints behind a mutex, for tests and for read models rebuilt at
// every start. It keeps nothing across a restart of the process, and is
// seen by one process only; within it, a lease per projection keeps one
// Projector of a name applying at a time (the others on Standby).
//
// One transaction at a time: Begin waits for the previous one to end, so
// a handler must not call Memory's own methods (it would wait for
// itself); it reads and writes through the KV it is given. Queries (Get,
// Scan) see only committed state and never wait for a handler.
type Memory struct {
	// writer is held from Begin to Commit or Rollback.
	writer sync.Mutex
	leases localLeases

	mu sync.RWMutex // guards what follows
	// data holds every projection's model, keyed name 0x00 key: names
	// hold no NUL, so two projections' keys never meet.
	data        map[string][]byte
	checkpoints map[string]Checkpoint
	parked      map[string][]ParkedEvent
	// generations holds the active generation of the projections that
	// switched (absent: 0). Names in data, checkpoints and parked are
	// slots (slotName).
	generations map[string]uint64
}

var (
	_ Target[KV] = (*Memory)(nil)
	_ Leaser     = (*Memory)(nil)
)

// TryLease takes the named projection's lease in this target: one
// Projector of a name applies at a time, a second waits on Standby.
func (m *Memory) TryLease(ctx context.Context, name string) (Lease, error) {
	return m.leases.tryLease(name), nil
}

// NewMemory returns an empty in-memory target.
func NewMemory() *Memory {
	return &Memory{
		data:        make(map[string][]byte),
		checkpoints: make(map[string]Checkpoint),
		parked:      make(map[string][]ParkedEvent),
		generations: make(map[string]uint64),
	}
}

func memoryKey(name string, key []byte) string { return name + "\x00" + string(key) }

// Get returns the committed value of key in the named projection's
// active model.
func (m *Memory) Get(name string, key []byte) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[memoryKey(slotName(name, m.generations[name]), key)]
	return bytes.Clone(v), ok
}

func (m *Memory) get(k string) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[k]
	return bytes.Clone(v), ok
}

// Scan calls fn on the committed keys of the named projection's model
// that start with prefix, in key order, until fn returns false.
func (m *Memory) Scan(name string, prefix []byte, fn func(key, value []byte) bool) {
	m.mu.RLock()
	slot := slotName(name, m.generations[name])
	lower := memoryKey(slot, prefix)
	var keys []string
	for k := range m.data {
		if strings.HasPrefix(k, lower) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	values := make([][]byte, len(keys))
	for i, k := range keys {
		values[i] = m.data[k]
	}
	m.mu.RUnlock()
	for i, k := range keys {
		if !fn([]byte(k[len(slot)+1:]), bytes.Clone(values[i])) {
			return
		}
	}
}

// Begin opens a transaction, waiting for the one in progress to end.
func (m *Memory) Begin(ctx context.Context, name string) (Tx[KV], error) {
	m.writer.Lock()
	if err := ctx.Err(); err != nil {
		m.writer.Unlock()
		return nil, err
	}
	return &memoryTx{m: m, name: name, writes: make(map[string][]byte)}, nil
}

// Load returns the named projection's checkpoint.
func (m *Memory) Load(ctx context.Context, name string) (Checkpoint, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.checkpoints[name], nil
}

// ParkedEvents lists the named projection's parked events.
func (m *Memory) ParkedEvents(ctx context.Context, name string, limit int) ([]ParkedEvent, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.parked[name]
	return slices.Clone(p[:min(len(p), clampLimit(limit))]), nil
}

// Generation returns the named projection's active generation.
func (m *Memory) Generation(ctx context.Context, name string) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.generations[name], nil
}

// Switch makes generation to active, if from still is, and drops
// generation from, at once.
func (m *Memory) Switch(ctx context.Context, name string, from, to uint64) error {
	m.writer.Lock()
	defer m.writer.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.generations[name] != from {
		return ErrGenerationMoved
	}
	m.generations[name] = to
	m.dropLocked(slotName(name, from))
	return nil
}

// Drop deletes generation gen of the named projection (a rebuild given
// up); it refuses the active generation.
func (m *Memory) Drop(ctx context.Context, name string, gen uint64) error {
	m.writer.Lock()
	defer m.writer.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.generations[name] == gen {
		return ErrActiveGeneration
	}
	m.dropLocked(slotName(name, gen))
	return nil
}

func (m *Memory) dropLocked(slot string) {
	prefix := memoryKey(slot, nil)
	for k := range m.data {
		if strings.HasPrefix(k, prefix) {
			delete(m.data, k)
		}
	}
	delete(m.checkpoints, slot)
	delete(m.parked, slot)
}

// memoryTx overlays its writes on the committed data until Commit.
//
// Invariant: writes holds every key written since the last DeletePrefix
// that covers it; a nil value is a deletion. deleted holds the prefixes
// deleted, applied to the committed data before writes at Commit. Keys
// and prefixes here are the data's (name 0x00 key).
type memoryTx struct {
	m       *Memory
	name    string
	writes  map[string][]byte
	deleted []string
	// checkpoint and the parked changes, applied at Commit.
	checkpoint  *Checkpoint
	park        []ParkedEvent
	unpark      []annals.Position
	clearParked bool
	done        bool
}

func (t *memoryTx) Model() KV { return t }

func (t *memoryTx) Get(key []byte) ([]byte, bool, error) {
	k := memoryKey(t.name, key)
	if v, ok := t.writes[k]; ok {
		return bytes.Clone(v), v != nil, nil
	}
	for _, p := range t.deleted {
		if strings.HasPrefix(k, p) {
			return nil, false, nil
		}
	}
	v, ok := t.m.get(k)
	return v, ok, nil
}

func (t *memoryTx) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	t.writes[memoryKey(t.name, key)] = bytes.Clone(value)
	return nil
}

func (t *memoryTx) Delete(key []byte) error {
	t.writes[memoryKey(t.name, key)] = nil
	return nil
}

func (t *memoryTx) DeletePrefix(prefix []byte) error {
	p := memoryKey(t.name, prefix)
	for k := range t.writes {
		if strings.HasPrefix(k, p) {
			delete(t.writes, k)
		}
	}
	t.deleted = append(t.deleted, p)
	return nil
}

func (t *memoryTx) SaveCheckpoint(ctx context.Context, prev annals.Position, cp Checkpoint) error {
	// The writer lock is held, so the committed checkpoint cannot move
	// before Commit: checking it here is checking it at Commit.
	cur, _ := t.m.Load(ctx, t.name)
	if t.checkpoint != nil {
		// Saved before in this transaction: that is the one to move.
		cur = *t.checkpoint
	}
	if cur.Position != prev {
		return ErrCheckpointMoved
	}
	t.checkpoint = &cp
	return nil
}

func (t *memoryTx) Park(ctx context.Context, pe ParkedEvent) error {
	t.park = append(t.park, pe)
	return nil
}

func (t *memoryTx) Unpark(ctx context.Context, position annals.Position) error {
	// Commit unparks the committed events before it parks this
	// transaction's: one parked here is taken back here.
	t.park = slices.DeleteFunc(t.park, func(pe ParkedEvent) bool { return pe.Position == position })
	t.unpark = append(t.unpark, position)
	return nil
}

func (t *memoryTx) ClearParked(ctx context.Context) error {
	t.clearParked, t.park = true, nil
	return nil
}

func (t *memoryTx) Commit(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	defer t.m.writer.Unlock()
	m := t.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range t.deleted {
		for k := range m.data {
			if strings.HasPrefix(k, p) {
				delete(m.data, k)
			}
		}
	}
	for k, v := range t.writes {
		if v == nil {
			delete(m.data, k)
		} else {
			m.data[k] = v
		}
	}
	if t.clearParked {
		delete(m.parked, t.name)
	}
	if len(t.unpark) > 0 {
		m.parked[t.name] = slices.DeleteFunc(m.parked[t.name], func(pe ParkedEvent) bool {
			return slices.Contains(t.unpark, pe.Position)
		})
	}
	if len(t.park) > 0 {
		m.parked[t.name] = append(m.parked[t.name], t.park...)
	}
	if t.checkpoint != nil {
		m.checkpoints[t.name] = *t.checkpoint
	}
	return nil
}

func (t *memoryTx) Rollback(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	t.m.writer.Unlock()
	return nil
}
