package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/annals/annals"
)

// Disk space. Invariants:
//
//  1. The writer admits a group only if the filesystem's free space, less
//     twice the group's size (its WAL record, then its table), stays at or
//     above the reserve. Below it the group's requests fail with
//     annals.ErrDiskFull, wrote nothing, and the writer checks again for
//     the next group: writes resume by themselves once space is freed.
//  2. The reserve holds what pebble writes after the last admitted group
//     without asking: the flush of every memtable, the next WAL file's
//     preallocation, compactions of the level-0 tables, MANIFEST edits. A
//     failed MANIFEST write or a WAL write that hits ENOSPC is fatal in
//     pebble; the reserve keeps them from the full disk.
//  3. An ENOSPC that still reaches the WAL (another process filled the disk
//     between the check and the write) is handled as a failed fsync: the
//     process stops, nothing of that group or later ones is acknowledged.
//     After a failed write the kernel keeps no promise about what reached
//     the disk, and pebble's WAL writer refuses every later record.
//  4. Open on a disk under the reserve opens pebble read-only (it replays
//     the WAL into memory and writes nothing), so a restart on a full disk
//     serves reads and refuses writes with annals.ErrDiskFull. The first
//     write that finds the reserve free again reopens pebble read-write
//     (readers wait for it; the log is the same before and after).
//  5. Background errors (a flush or compaction out of space) do not stop
//     the process: pebble keeps the inputs and retries. They are logged at
//     most once per backgroundErrorLogInterval.

// Sizing the WAL and the reserve to the disk. Pebble preallocates each WAL
// file at 110% of the memtable size and keeps up to memTablesMax+1 old WAL
// files for reuse, so a 64 MiB memtable takes about 280 MB of disk before
// the first event: on a small disk the memtable is made smaller instead.
const (
	// MinMemTableBytes is the smallest memtable the store sizes itself.
	MinMemTableBytes = 1 << 20
	// memTableFreeFraction: by default the memtable is at most the free
	// space at open divided by this (64 MiB needs 2 GiB free).
	memTableFreeFraction = 32
	// MinDiskReserveBytes is the smallest default reserve.
	MinDiskReserveBytes = 16 << 20
	// diskReserveMemTables: the default reserve is this many memtables
	// (two waiting flushes, a WAL preallocation, level-0 compactions).
	diskReserveMemTables = 4
	// backgroundErrorLogInterval bounds how often a repeated background
	// error (a flush retried on a full disk) is logged.
	backgroundErrorLogInterval = time.Minute
)

// memTableFor is the default memtable size on a filesystem with free
// bytes available.
func memTableFor(free uint64) uint64 {
	return min(max(free/memTableFreeFraction, MinMemTableBytes), DefaultMemTableBytes)
}

// reserveFor is the default disk reserve for a memtable size.
func reserveFor(memTable uint64) uint64 {
	return max(diskReserveMemTables*memTable, MinDiskReserveBytes)
}

// diskGuard decides whether the writer may take a group (invariant 1) and
// logs when the disk fills and when writes resume.
type diskGuard struct {
	dir      string
	reserve  uint64
	readOnly bool // opened read-only on a full disk (invariant 4)
	log      *slog.Logger
	full     bool // the last check refused
}

// admit returns nil if a group of groupBytes may be written, or an error
// matching annals.ErrDiskFull. A store opened read-only is reopened for
// writing first, once the disk has the reserve again.
func (w *writer) admit(groupBytes int) error {
	g := w.s.disk
	err := g.check(groupBytes)
	if !g.readOnly {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w; the store is read-only (opened on a full disk) until then", err)
	}
	return w.s.reopenWritable()
}

// reopenWritable reopens the engine read-write. Only the writer calls it,
// while it has no group applied (a read-only store applies none); readers
// wait at the gate meanwhile and see the same log after.
func (s *Store) reopenWritable() error {
	return s.gate.Exclusive(s.reopenWritableLocked)
}

func (s *Store) reopenWritableLocked() error {
	if err := s.db.Close(); err != nil {
		panic(fmt.Sprintf("embedded: closing the read-only engine to reopen it for writing: %v", err))
	}
	db, err := openPebble(s.disk.dir, s.opts, false)
	if err != nil {
		if s.db, err = openPebble(s.disk.dir, s.opts, true); err != nil {
			panic(fmt.Sprintf("embedded: reopening the store read-only after a failed read-write open: %v", err))
		}
		return fmt.Errorf("%w: reopening the store for writing: %v", annals.ErrDiskFull, err)
	}
	s.db = db
	s.disk.readOnly = false
	s.opts.Logger.Info("embedded: disk space freed, the store is writable again", "dir", s.disk.dir)
	return nil
}

// check returns an error matching annals.ErrDiskFull if a group of
// groupBytes would leave less than the reserve free.
func (g *diskGuard) check(groupBytes int) error {
	free, err := freeBytes(g.dir)
	if errors.Is(err, errFreeUnknown) {
		return nil
	}
	if err != nil {
		// Not knowing is no reason to stop writing: the fsync invariant
		// still guards what is acknowledged.
		g.log.Warn("embedded: cannot read the free disk space", "dir", g.dir, "err", err)
		return nil
	}
	need := g.reserve + 2*uint64(groupBytes)
	if free < need {
		if !g.full {
			g.log.Error("embedded: disk full, refusing writes until space is freed", "dir", g.dir, "free-bytes", free, "reserve-bytes", g.reserve)
		}
		g.full = true
		return fmt.Errorf("%w: %d bytes free on %s, the store keeps %d in reserve; free space and retry",
			annals.ErrDiskFull, free, g.dir, g.reserve)
	}
	if g.full {
		g.log.Info("embedded: disk space freed, writes resume", "dir", g.dir, "free-bytes", free)
		g.full = false
	}
	return nil
}

// freeAtOpen is the free space where dir is or will be: the store's
// directory, or its nearest existing parent before it is created.
func freeAtOpen(dir string) (uint64, error) {
	for {
		free, err := freeBytes(dir)
		parent := filepath.Dir(dir)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || parent == dir {
			return free, err
		}
		dir = parent
	}
}

// errFreeUnknown: this platform cannot tell the free space.
var errFreeUnknown = errors.New("embedded: free space unknown on this platform")

// noSpace reports an out-of-space error from the filesystem.
func noSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// backgroundErrors logs pebble's background errors, a repeated one at most
// once per backgroundErrorLogInterval (pebble retries a failed flush at
// once, over and over, while the disk is full).
type backgroundErrors struct {
	log     *slog.Logger
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (b *backgroundErrors) report(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !b.last.IsZero() && now.Sub(b.last) < backgroundErrorLogInterval {
		b.skipped++
		return
	}
	b.log.Error("embedded: pebble background error (retried by pebble)", "err", err,
		"out-of-space", noSpace(err), "similar-errors-not-logged", b.skipped)
	b.last, b.skipped = now, 0
}

// DiskUsage returns the bytes the store's files take, as pebble counts
// them (WAL, tables, manifests), and the bytes an unprivileged writer may
// still use on their filesystem (0 where that cannot be told).
func (s *Store) DiskUsage() (usedBytes, availBytes uint64, err error) {
	err = s.read(func() error {
		usedBytes = s.db.Metrics().DiskSpaceUsage()
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	free, err := freeBytes(s.disk.dir)
	if err != nil && !errors.Is(err, errFreeUnknown) {
		return usedBytes, 0, err
	}
	return usedBytes, free, nil
}
