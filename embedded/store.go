// Package embedded is the default Annals store: durable, in-process, on the
// pebble storage engine. Nothing to install; one directory holds it all.
//
// Writes go through one writer goroutine that groups concurrent appends into
// one pebble batch and one WAL fsync (group commit). An append returns only
// after its fsync; readers and subscriptions never see an event before it is
// durable. See docs/design.md for the layout and the invariants.
package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/annals/annals/internal/links"
	"github.com/annals/annals/internal/privfs"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults of Options.
const (
	DefaultStreamCacheEntries = 1_000_000
	DefaultBlockCacheBytes    = 128 << 20
	DefaultMemTableBytes      = 64 << 20
	// DefaultQueueLength bounds the appends waiting for the writer; more
	// callers block (honouring their context).
	DefaultQueueLength = 4096
	// DefaultGroupOps and DefaultGroupBytes bound one group commit.
	DefaultGroupOps   = 2048
	DefaultGroupBytes = 16 << 20
	// DefaultReadPageBytes bounds the events a read holds in memory at once
	// (besides the page's event count, annals.DefaultReadBatchEvents).
	DefaultReadPageBytes = 4 << 20
)

// memTablesMax is how many memtables may exist at once (one being written,
// the others waiting for their flush).
const memTablesMax = 2

// Options configure a Store. Zero fields take the defaults.
type Options struct {
	Limits             annals.Limits
	StreamCacheEntries int
	BlockCacheBytes    int64
	// MemTableBytes is pebble's memtable size; each WAL file takes 110% of
	// it on disk. Zero sizes it to the disk: the free space at open / 32,
	// at least MinMemTableBytes, at most DefaultMemTableBytes.
	MemTableBytes uint64
	// DiskReserveBytes is the free disk space writes never eat into: a
	// write that would leave less fails with annals.ErrDiskFull (space.go).
	// Zero is 4 memtables, at least MinDiskReserveBytes. Much less than
	// that lets pebble's own flushes meet the full disk: writes then stall
	// until space is freed, or the process stops (space.go).
	DiskReserveBytes uint64
	QueueLength      int
	GroupOps         int
	GroupBytes       int
	ReadPageBytes    int
	// Logger receives the store's notable events (slog.Default if nil).
	Logger *slog.Logger
	// Now is the clock (time.Now by default).
	Now func() time.Time
	// OnGroupCommit, if set, is told of every group commit, from the
	// writer: it must return at once (annals.GroupCommit).
	OnGroupCommit func(annals.GroupCommit)
	// fs replaces the filesystem in tests that inject faults.
	fs vfs.FS
}

func (o Options) withDefaults() Options {
	o.Limits = o.Limits.WithDefaults()
	core.Default(&o.StreamCacheEntries, DefaultStreamCacheEntries)
	core.Default(&o.QueueLength, DefaultQueueLength)
	core.Default(&o.GroupOps, DefaultGroupOps)
	core.Default(&o.GroupBytes, DefaultGroupBytes)
	core.Default(&o.ReadPageBytes, DefaultReadPageBytes)
	core.Default(&o.BlockCacheBytes, DefaultBlockCacheBytes)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the embedded store. Open one per directory; pebble locks it.
type Store struct {
	opts   Options
	db     *pebble.DB
	wm     *core.Watermark
	disk   *diskGuard   // only the writer uses it
	queue  *core.Queue  // to the writer (writer.go)
	writes core.Writes  // the write methods, over queue
	src    links.Source // what package links reads, made once: reads use it
	gate   core.Gate    // readers use db through it; Close shuts it before closing db
	once   sync.Once
}

var _ annals.Store = (*Store)(nil)

// Open opens (or creates) the store in dir. On a disk with less free space
// than the reserve, it opens an existing store read-only: reads work,
// writes fail with annals.ErrDiskFull until space is freed (the store then
// becomes writable by itself).
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	disk, err := sizeToDisk(dir, &opts)
	if err != nil {
		return nil, err
	}
	db, err := openPebble(dir, opts, disk.readOnly)
	if err != nil {
		if disk.readOnly && !errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: less than %d bytes free, and no store to open read-only", err, disk.reserve)
		}
		return nil, err
	}
	if err := checkFormat(db, disk.readOnly, opts.Logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	last, lastTime, err := lastEvent(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		opts:  opts,
		db:    db,
		disk:  disk,
		wm:    core.NewWatermark(last),
		queue: core.NewQueue(opts.Limits, opts.QueueLength, opts.GroupOps, opts.GroupBytes),
	}
	ids, err := loadIDFilter(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded: reading the id index: %w", err)
	}
	s.writes = core.Writes{Write: s.queue.Write}
	s.src = s.links()
	w := newWriter(s, last, lastTime, ids)
	go w.run()
	opts.Logger.Info("embedded store open", "dir", dir, "position", last, "id-filter-bytes", ids.sizeBytes(),
		"memtable-bytes", opts.MemTableBytes, "disk-reserve-bytes", disk.reserve)
	if disk.readOnly {
		opts.Logger.Error("embedded: disk full: the store is open read-only until the disk has its reserve free again",
			"dir", dir, "reserve-bytes", disk.reserve)
	}
	return s, nil
}

// sizeToDisk fills in the memtable size and the reserve from the free space
// at dir (space.go) and says whether pebble must open read-only.
func sizeToDisk(dir string, opts *Options) (*diskGuard, error) {
	free, err := freeAtOpen(dir)
	known := err == nil
	if err != nil && !errors.Is(err, errFreeUnknown) {
		return nil, fmt.Errorf("embedded: open %s: reading the free disk space: %w", dir, err)
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = DefaultMemTableBytes
		if known {
			opts.MemTableBytes = memTableFor(free)
		}
	}
	if opts.DiskReserveBytes == 0 {
		opts.DiskReserveBytes = reserveFor(opts.MemTableBytes)
	}
	return &diskGuard{dir: dir, reserve: opts.DiskReserveBytes, log: opts.Logger,
		readOnly: known && free < opts.DiskReserveBytes}, nil
}

// openPebble opens the engine in dir; readOnly on a full disk (space.go).
func openPebble(dir string, opts Options, readOnly bool) (*pebble.DB, error) {
	// Pebble reserves its memtables' memory from the block cache: size the
	// cache so that BlockCacheBytes stay for blocks (with the default
	// sizes, two 64 MiB memtables would otherwise take all of it).
	cache := pebble.NewCache(opts.BlockCacheBytes + memTablesMax*int64(opts.MemTableBytes))
	defer cache.Unref()
	po := &pebble.Options{
		Cache:              cache,
		MemTableSize:       opts.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		// Writes stall once this many memtables wait to be flushed.
		MemTableStopWritesThreshold: memTablesMax,
		Logger:                      quietLogger{opts.Logger},
		EventListener:               &pebble.EventListener{BackgroundError: (&backgroundErrors{log: opts.Logger}).report},
		ReadOnly:                    readOnly,
		// Only the owner may read the events (or the models made of them).
		FS: privfs.Wrap(opts.fs),
	}
	if readOnly {
		// A read-only open cannot ratchet the format: keep the store's.
		po.FormatMajorVersion = 0
	}
	// MinLZ (pebble's "fastest") decompresses faster than snappy: a
	// catch-up read of cold history is mostly block decompression.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		if lockHeld(err) {
			return nil, fmt.Errorf("embedded: open %s: %w (%v)", dir, ErrLocked, err)
		}
		if readOnly {
			return nil, fmt.Errorf("embedded: open %s read-only: %w: %v", dir, annals.ErrDiskFull, err)
		}
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	return db, nil
}

// lastEvent finds the end of the log. Everything pebble recovers is whole
// batches (its WAL is checksummed and torn tails are dropped), so the log is
// gapless up to here.
func lastEvent(db *pebble.DB) (annals.Position, time.Time, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableEvent}, UpperBound: []byte{tableEvent + 1}})
	if err != nil {
		return 0, time.Time{}, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, time.Time{}, it.Error()
	}
	first, err := decodePosition(it.Key()[1:])
	if err != nil {
		return 0, time.Time{}, err
	}
	c, err := parseChunk(first, append([]byte(nil), it.Value()...))
	if err != nil {
		return 0, time.Time{}, err
	}
	e, err := c.event(c.last())
	if err != nil {
		return 0, time.Time{}, err
	}
	return c.last(), e.Recorded, nil
}

// loadIDFilter adds every id of the id index to a new filter.
func loadIDFilter(db *pebble.DB) (*idFilter, error) {
	f := newIDFilter()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableID}, UpperBound: []byte{tableID + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		stream, id, err := parseIDKey(it.Key())
		if err != nil {
			return nil, err
		}
		f.add(bytesToString(stream), id)
	}
	return f, it.Error()
}

// Close stops the writer (appends not yet taken fail with ErrClosed; those
// taken finish and are durable), ends subscriptions, and closes the engine.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.queue.Stop()
		s.wm.Close()
		s.gate.Shut()
		err = s.db.Close()
		s.opts.Logger.Info("embedded store closed", "position", s.wm.Load())
	})
	return err
}

// Position returns the last durable global position.
func (s *Store) Position() annals.Position { return s.wm.Load() }

// read runs fn with the engine open, or fails with ErrClosed.
func (s *Store) read(fn func() error) error { return s.gate.Use(fn) }

// ErrLocked is returned by Open when another Store, in this process or
// another, has the directory open: one directory, one open store.
var ErrLocked = errors.New("embedded: the store is open elsewhere (its directory is locked)")

// lockHeld reports whether pebble failed to open on the directory's lock:
// held by this process (pebble says so in words) or another (fcntl answers
// EAGAIN or EACCES; a failure to create the lock file is a *PathError).
func lockHeld(err error) bool {
	if strings.Contains(err.Error(), "lock held by current process") {
		return true
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}

type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) {}
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...))
}
