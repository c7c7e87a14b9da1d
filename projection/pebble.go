package projection

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/privfs"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Pebble is the embedded target: a KV read model per projection and the
// checkpoints in a pebble database of their own, committed with fsync. Pebble rather than
// SQLite because it is already the engine of the embedded store (no new
// dependency, no cgo), its batches are atomic and durable, and an
// ordered key space is what most read models of an event store are:
// lookups by id and scans by prefix.
//
// Keys (the read model's keys are the handler's, behind the table byte
// and the projection's name; names hold no NUL, so two projections' keys
// never meet):
//
//	'm' name 0x00 key                a read-model value
//	'c' name                         a checkpoint: position(8) parked(8)
//	'p' name 0x00 position(8)        a parked event (JSON)
//	'g' name                         the active generation(8), if not 0
//
// name here is a slot: the projection's name for generation 0, name 0x01
// generation after a blue/green switch (slotName). Queries (Get, Scan)
// read the active generation and its model from one snapshot, and a
// switch is one batch: a query sees the old read model or the new one,
// whole.
//
// One transaction at a time (an indexed batch; Begin waits for the one in
// progress): the checkpoint checked by SaveCheckpoint cannot move before
// Commit. A handler reads and writes through the KV it is given, never
// through Pebble's own methods.
type Pebble struct {
	db     *pebble.DB
	writer sync.Mutex
	leases localLeases
}

var (
	_ Target[KV] = (*Pebble)(nil)
	_ Leaser     = (*Pebble)(nil)
)

// TryLease takes the named projection's lease in this target: the
// directory is the process's alone (OpenPebble), so a lease held in the
// process keeps one Projector of a name applying at a time.
func (p *Pebble) TryLease(ctx context.Context, name string) (Lease, error) {
	return p.leases.tryLease(name), nil
}

const (
	pebbleModel      = 'm'
	pebbleCheckpoint = 'c'
	pebbleParked     = 'p'
	pebbleGeneration = 'g'
)

// OpenPebble opens (or creates) the embedded target in dir. The
// directory is locked while open: a second OpenPebble of it, in this
// process or another, fails, so a pebble target's projections run in one
// process at a time; within that process, a lease per projection keeps
// one Projector of a name applying at a time (TryLease).
func OpenPebble(dir string) (*Pebble, error) {
	return OpenPebbleWith(dir, PebbleOptions{})
}

// PebbleOptions tune the embedded target's database.
type PebbleOptions struct {
	// BlockCacheBytes is the cache of the database's blocks (0 means
	// DefaultPebbleBlockCacheBytes). A handler that reads its model (most
	// do: an update reads the row it changes) is bound by this cache once
	// the model outgrows it.
	BlockCacheBytes int64
	// MemTableBytes is the size of one memtable (0 means
	// DefaultPebbleMemTableBytes); at most pebbleMemTablesMax wait to be
	// flushed.
	MemTableBytes uint64
}

// OpenPebbleWith is OpenPebble with options.
func OpenPebbleWith(dir string, opts PebbleOptions) (*Pebble, error) {
	if opts.BlockCacheBytes <= 0 {
		opts.BlockCacheBytes = DefaultPebbleBlockCacheBytes
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = DefaultPebbleMemTableBytes
	}
	// Pebble reserves its memtables' memory from the block cache: size the
	// cache so that BlockCacheBytes stay for blocks.
	cache := pebble.NewCache(opts.BlockCacheBytes + pebbleMemTablesMax*int64(opts.MemTableBytes))
	defer cache.Unref()
	po := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                opts.MemTableBytes,
		MemTableStopWritesThreshold: pebbleMemTablesMax,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      quietPebble{},
		// Only the owner may read the events (or the models made of them).
		FS: privfs.FS(),
	}
	// Handlers read their model by key: bloom filters spare the reads of
	// the levels that do not hold a key (a new row, a pointer not yet
	// written), and MinLZ decompresses faster than snappy.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		// Pebble's lock file is held by another process.
		return nil, fmt.Errorf("projection: open %s: in use by another process (a pebble target is exclusive to one process): %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("projection: open %s: %w", dir, err)
	}
	return &Pebble{db: db}, nil
}

// Close closes the database; transactions in progress must have ended.
func (p *Pebble) Close() error { return p.db.Close() }

// Get returns the committed value of key in the named projection's
// active model.
func (p *Pebble) Get(name string, key []byte) ([]byte, bool, error) {
	snap := p.db.NewSnapshot()
	defer snap.Close()
	gen, err := pebbleGenerationOf(snap, name)
	if err != nil {
		return nil, false, err
	}
	return pebbleGet(snap, modelKey(slotName(name, gen), key))
}

// Scan calls fn on the committed keys of the named projection's active
// model that start with prefix, in key order, until fn returns false.
func (p *Pebble) Scan(name string, prefix []byte, fn func(key, value []byte) bool) error {
	snap := p.db.NewSnapshot()
	defer snap.Close()
	gen, err := pebbleGenerationOf(snap, name)
	if err != nil {
		return err
	}
	slot := slotName(name, gen)
	skip := len(modelKey(slot, nil))
	lower := modelKey(slot, prefix)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(bytes.Clone(it.Key()[skip:]), bytes.Clone(it.Value())) {
			break
		}
	}
	return it.Error()
}

// Begin opens a transaction, waiting for the one in progress to end.
func (p *Pebble) Begin(ctx context.Context, name string) (Tx[KV], error) {
	p.writer.Lock()
	if err := ctx.Err(); err != nil {
		p.writer.Unlock()
		return nil, err
	}
	return &pebbleTx{p: p, name: name, b: p.db.NewIndexedBatch()}, nil
}

// Load returns the named projection's checkpoint.
func (p *Pebble) Load(ctx context.Context, name string) (Checkpoint, error) {
	return pebbleCheckpointOf(p.db, name)
}

// ParkedEvents lists the named projection's parked events.
func (p *Pebble) ParkedEvents(ctx context.Context, name string, limit int) ([]ParkedEvent, error) {
	lower := parkedPrefix(name)
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []ParkedEvent
	for ok := it.First(); ok && len(out) < clampLimit(limit); ok = it.Next() {
		var pe ParkedEvent
		if err := json.Unmarshal(it.Value(), &pe); err != nil {
			return nil, fmt.Errorf("projection: parked event %x: %w", it.Key(), err)
		}
		out = append(out, pe)
	}
	return out, it.Error()
}

// Generation returns the named projection's active generation.
func (p *Pebble) Generation(ctx context.Context, name string) (uint64, error) {
	return pebbleGenerationOf(p.db, name)
}

// Switch makes generation to active, if from still is, and drops
// generation from, in one batch committed with fsync.
func (p *Pebble) Switch(ctx context.Context, name string, from, to uint64) error {
	return p.generationBatch(ctx, name, func(b *pebble.Batch, active uint64) error {
		if active != from {
			return ErrGenerationMoved
		}
		if err := b.Set(generationKey(name), binary.BigEndian.AppendUint64(nil, to), nil); err != nil {
			return err
		}
		return dropPebbleSlot(b, slotName(name, from))
	})
}

// Drop deletes generation gen of the named projection (a rebuild given
// up); it refuses the active generation.
func (p *Pebble) Drop(ctx context.Context, name string, gen uint64) error {
	return p.generationBatch(ctx, name, func(b *pebble.Batch, active uint64) error {
		if active == gen {
			return ErrActiveGeneration
		}
		return dropPebbleSlot(b, slotName(name, gen))
	})
}

// generationBatch runs fn in a batch of its own, as the one writer.
func (p *Pebble) generationBatch(ctx context.Context, name string, fn func(b *pebble.Batch, active uint64) error) error {
	p.writer.Lock()
	defer p.writer.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	active, err := pebbleGenerationOf(p.db, name)
	if err != nil {
		return err
	}
	b := p.db.NewBatch()
	defer b.Close()
	if err := fn(b, active); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

func dropPebbleSlot(b *pebble.Batch, slot string) error {
	model := modelKey(slot, nil)
	parked := parkedPrefix(slot)
	return errors.Join(
		b.DeleteRange(model, prefixEnd(model), nil),
		b.DeleteRange(parked, prefixEnd(parked), nil),
		b.Delete(checkpointKey(slot), nil))
}

func pebbleGenerationOf(r pebbleReader, name string) (uint64, error) {
	v, ok, err := pebbleGet(r, generationKey(name))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("projection: generation of %s: %d bytes, want 8", name, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func pebbleGet(r pebbleReader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

func pebbleCheckpointOf(r pebbleReader, name string) (Checkpoint, error) {
	v, ok, err := pebbleGet(r, checkpointKey(name))
	if err != nil || !ok {
		return Checkpoint{}, err
	}
	if len(v) != 16 {
		return Checkpoint{}, fmt.Errorf("projection: checkpoint of %s: %d bytes, want 16", name, len(v))
	}
	return Checkpoint{Position: annals.Position(binary.BigEndian.Uint64(v)), Parked: binary.BigEndian.Uint64(v[8:])}, nil
}

type pebbleTx struct {
	p    *Pebble
	name string
	b    *pebble.Batch
	done bool
}

func (t *pebbleTx) Model() KV { return pebbleKV{t.b, modelKey(t.name, nil)} }

func (t *pebbleTx) SaveCheckpoint(ctx context.Context, prev annals.Position, cp Checkpoint) error {
	name := t.name
	// Read through the batch: the committed checkpoint (the writer lock
	// keeps it still) or one this transaction wrote.
	cur, err := pebbleCheckpointOf(t.b, name)
	if err != nil {
		return err
	}
	if cur.Position != prev {
		return ErrCheckpointMoved
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(cp.Position))
	v = binary.BigEndian.AppendUint64(v, cp.Parked)
	return t.b.Set(checkpointKey(name), v, nil)
}

func (t *pebbleTx) Park(ctx context.Context, pe ParkedEvent) error {
	name := t.name
	v, err := json.Marshal(pe)
	if err != nil {
		return err
	}
	return t.b.Set(binary.BigEndian.AppendUint64(parkedPrefix(name), uint64(pe.Position)), v, nil)
}

func (t *pebbleTx) Unpark(ctx context.Context, position annals.Position) error {
	return t.b.Delete(binary.BigEndian.AppendUint64(parkedPrefix(t.name), uint64(position)), nil)
}

func (t *pebbleTx) ClearParked(ctx context.Context) error {
	lower := parkedPrefix(t.name)
	return t.b.DeleteRange(lower, prefixEnd(lower), nil)
}

func (t *pebbleTx) Commit(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	defer t.p.writer.Unlock()
	defer t.b.Close()
	return t.b.Commit(pebble.Sync)
}

func (t *pebbleTx) Rollback(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	defer t.p.writer.Unlock()
	return t.b.Close()
}

// pebbleKV is one projection's read model seen through a transaction's
// batch; space is the model's key prefix ('m' name 0x00).
type pebbleKV struct {
	b     *pebble.Batch
	space []byte
}

func (kv pebbleKV) key(k []byte) []byte {
	return append(append(make([]byte, 0, len(kv.space)+len(k)), kv.space...), k...)
}

func (kv pebbleKV) Get(key []byte) ([]byte, bool, error) { return pebbleGet(kv.b, kv.key(key)) }
func (kv pebbleKV) Set(key, value []byte) error          { return kv.b.Set(kv.key(key), value, nil) }
func (kv pebbleKV) Delete(key []byte) error              { return kv.b.Delete(kv.key(key), nil) }
func (kv pebbleKV) DeletePrefix(prefix []byte) error {
	lower := kv.key(prefix)
	return kv.b.DeleteRange(lower, prefixEnd(lower), nil)
}

// modelKey is 'm' name 0x00 key.
func modelKey(name string, key []byte) []byte {
	k := make([]byte, 0, 2+len(name)+len(key))
	k = append(k, pebbleModel)
	k = append(k, name...)
	k = append(k, 0)
	return append(k, key...)
}

func checkpointKey(name string) []byte {
	return append([]byte{pebbleCheckpoint}, name...)
}

func generationKey(name string) []byte {
	return append([]byte{pebbleGeneration}, name...)
}

func parkedPrefix(name string) []byte {
	k := append([]byte{pebbleParked}, name...)
	return append(k, 0)
}

// prefixEnd is the smallest key after every key that starts with prefix.
// Every prefix here starts with a table byte below 0xff, so one exists.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	panic("projection: no key after prefix")
}

// quietPebble drops pebble's own log lines.
type quietPebble struct{}

func (quietPebble) Infof(format string, args ...any)  {}
func (quietPebble) Errorf(format string, args ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
