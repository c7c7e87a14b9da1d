package embedded

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/testdisk"
)

// smallDiskBytes is the test filesystem: small enough to fill in a moment.
const smallDiskBytes = 64 << 20

// openHangGuard bounds an Open that should take well under a second: the
// failure it guards against is pebble retrying a flush forever.
const openHangGuard = 2 * time.Minute

// appendHangGuard bounds one append: a store whose engine stalls on a full
// disk fails the test instead of hanging it.
const appendHangGuard = time.Minute

func diskLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openGuarded opens dir, failing the test if Open hangs.
func openGuarded(t *testing.T, dir string) *Store {
	t.Helper()
	type opened struct {
		s   *Store
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := Open(dir, Options{Logger: diskLogger(t)})
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			t.Fatalf("open: %v", o.err)
		}
		t.Cleanup(func() { closeGuarded(t, o.s) })
		return o.s
	case <-time.After(openHangGuard):
		t.Fatalf("open hung for %v", openHangGuard)
		return nil
	}
}

// closeGuarded closes s, failing the test (and leaving s) if Close hangs,
// as it does when the engine stalled on a full disk.
func closeGuarded(t *testing.T, s *Store) {
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(openHangGuard):
		t.Errorf("close hung for %v", openHangGuard)
	}
}

// diskUsage is the space the files under dir take on disk (allocated
// blocks, preallocation included).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// appendKiB appends an event of kib KiB of random data (it does not
// compress: each takes its size in the tables too).
func appendKiB(s *Store, stream string, kib int) error {
	data := make([]byte, kib<<10)
	rand.Read(data)
	ctx, cancel := context.WithTimeout(context.Background(), appendHangGuard)
	defer cancel()
	_, err := s.Append(ctx, stream, annals.Any, annals.EventData{Type: "filler", Data: data})
	return err
}

func countStream(t *testing.T, s *Store, stream string) int {
	t.Helper()
	n := 0
	for _, err := range s.ReadStream(context.Background(), stream, annals.ReadStreamOptions{}) {
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		n++
	}
	return n
}

// On a 64 MiB ext4: appends fail with ErrDiskFull once the free space
// reaches the reserve, reads go on, writes resume when space is freed, and
// a store reopened on a full disk comes up read-only.
func TestDiskFull(t *testing.T) {
	mnt := testdisk.Mount(t, smallDiskBytes)
	dir, ballast := filepath.Join(mnt, "store"), filepath.Join(mnt, "ballast")
	s := openGuarded(t, dir)
	t.Logf("memtable %d bytes, reserve %d bytes, %s", s.opts.MemTableBytes, s.disk.reserve, testdisk.String(t, mnt))

	const stream = "disk-1"
	acked := 0
	for range 256 { // 1 MiB
		if err := appendKiB(s, stream, 4); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	t.Logf("after 1 MiB of events the store takes %.1f MiB on disk", float64(diskUsage(t, dir))/(1<<20))

	const headroomBytes = 8 << 20
	testdisk.Fill(t, ballast, int64(s.disk.reserve)+headroomBytes)
	// Twice what the whole disk holds: a hang guard, not a measure.
	limit := 2 * testdisk.Free(t, mnt) / (4 << 10)
	var refused error
	for i := int64(0); refused == nil; i++ {
		if i > limit {
			t.Fatalf("%d appends of 4 KiB with %d bytes over the reserve, none refused (%s)", i, headroomBytes, testdisk.String(t, mnt))
		}
		if refused = appendKiB(s, stream, 4); refused == nil {
			acked++
		}
	}
	if !errors.Is(refused, annals.ErrDiskFull) || !strings.Contains(refused.Error(), "disk full") {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", refused)
	}
	t.Logf("refused after %d appends: %v", acked, refused)
	// The refusal came at the reserve's edge, where the engine's own
	// clean-up (obsolete WAL and table files) may free enough for the next
	// append: that is writes resuming by themselves. To see a second
	// refusal, take the disk well under the reserve first.
	testdisk.Fill(t, ballast, int64(s.disk.reserve)/2)
	if err := appendKiB(s, stream, 4); !errors.Is(err, annals.ErrDiskFull) {
		t.Fatalf("second append on a full disk: %v", err)
	}
	if n := countStream(t, s, stream); n != acked {
		t.Fatalf("read %d events on a full disk, %d acknowledged", n, acked)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := appendKiB(s, stream, 4); err != nil {
		t.Fatalf("append after the ballast was removed: %v", err)
	}
	acked++

	// A restart on a disk with no space at all.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testdisk.Fill(t, ballast, 0)
	t.Logf("disk filled: %s", testdisk.String(t, mnt))
	ro := openGuarded(t, dir)
	if n := countStream(t, ro, stream); n != acked {
		t.Fatalf("read %d events read-only, %d acknowledged", n, acked)
	}
	err := appendKiB(ro, stream, 1)
	if !errors.Is(err, annals.ErrDiskFull) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("append on a store opened on a full disk: %v, want ErrDiskFull (read-only)", err)
	}

	// A read spanning the reopen: its pages come from both engines.
	next, stop := iter.Pull2(ro.ReadStream(context.Background(), stream, annals.ReadStreamOptions{}))
	defer stop()
	if _, err, ok := next(); !ok || err != nil {
		t.Fatalf("first event: %v", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := appendKiB(ro, stream, 1); err != nil {
		t.Fatalf("append once space is freed, on the store opened read-only: %v", err)
	}
	acked++
	read := 1
	for _, err, ok := next(); ok; _, err, ok = next() {
		if err != nil {
			t.Fatalf("read across the reopen: %v", err)
		}
		read++
	}
	if read < acked-1 {
		t.Fatalf("a read across the reopen got %d events, %d were there before it", read, acked-1)
	}
	if n := countStream(t, ro, stream); n != acked {
		t.Fatalf("read %d events after the reopen, %d acknowledged", n, acked)
	}
	ro.Close()
	rw := openGuarded(t, dir)
	if n := countStream(t, rw, stream); n != acked {
		t.Fatalf("read %d events after a restart, %d acknowledged", n, acked)
	}
}

// The memtable, and with it each WAL file, is sized to the free space; the
// reserve to the memtable.
func TestSizedToDisk(t *testing.T) {
	cases := []struct{ free, memTable, reserve uint64 }{
		{0, MinMemTableBytes, MinDiskReserveBytes},
		{64 << 20, MinMemTableBytes * 2, MinDiskReserveBytes},
		{200 << 20, 200 << 20 / memTableFreeFraction, 4 * (200 << 20 / memTableFreeFraction)},
		{1 << 40, DefaultMemTableBytes, 4 * DefaultMemTableBytes},
	}
	for _, c := range cases {
		m := memTableFor(c.free)
		if m != c.memTable || reserveFor(m) != c.reserve {
			t.Errorf("free %d: memtable %d, reserve %d; want %d, %d", c.free, m, reserveFor(m), c.memTable, c.reserve)
		}
	}
}
