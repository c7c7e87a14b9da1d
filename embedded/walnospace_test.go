package embedded

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The WAL meeting ENOSPC (the disk filled by someone else between the
// free-space check and the write) stops the process, and every append it
// acknowledged is there after the restart (space.go, invariant 3).
const (
	walNoSpaceChildEnv = "ANNALS_WAL_ENOSPC_CHILD_DIR"
	// walWritesBeforeNoSpace: the child's WAL writes that succeed.
	walWritesBeforeNoSpace = 200
	walNoSpaceHangGuard    = 2 * time.Minute
)

// noSpaceWALFS fails every WAL write after the first few with ENOSPC.
type noSpaceWALFS struct {
	vfs.FS
	writes *atomic.Int64
}

type noSpaceWALFile struct {
	vfs.File
	writes *atomic.Int64
}

func (f noSpaceWALFile) Write(p []byte) (int, error) {
	if f.writes.Add(1) > walWritesBeforeNoSpace {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (fs noSpaceWALFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return noSpaceWALFile{f, fs.writes}, nil
}

func (fs noSpaceWALFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs noSpaceWALFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

// walNoSpaceChild appends one event at a time, printing each acknowledged
// position, until the process stops.
func walNoSpaceChild(dir string) {
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		fs: noSpaceWALFS{vfs.Default, new(atomic.Int64)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	for i := 0; ; i++ {
		r, err := s.Append(context.Background(), "wal-enospc", annals.Any, annals.EventData{Type: "e", Data: []byte(strconv.Itoa(i))})
		if err != nil {
			fmt.Fprintln(os.Stderr, "append answered an error:", err)
			os.Exit(4)
		}
		fmt.Println(r.LastPosition)
	}
}

func TestWALOutOfSpace(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), walNoSpaceChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(walNoSpaceHangGuard, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var acked []annals.Position
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		pos, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked = append(acked, annals.Position(pos))
	}
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if !timer.Stop() {
		t.Fatalf("the child hung on a WAL out of space (killed after %v); stderr:\n%s", walNoSpaceHangGuard, stderr.String())
	}
	if err == nil || !strings.Contains(stderr.String(), "no space left on device") || strings.Contains(stderr.String(), "append answered") {
		t.Fatalf("child: %v, want a stop naming ENOSPC and no answered append; stderr:\n%s", err, stderr.String())
	}
	if len(acked) == 0 {
		t.Fatal("no append acknowledged before the WAL filled")
	}
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	i := 0
	for e, err := range s.ReadAll(context.Background(), annals.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if i < len(acked) && e.Position == acked[i] {
			if string(e.Data) != strconv.Itoa(i) {
				t.Fatalf("position %d holds %q, acknowledged as %d", e.Position, e.Data, i)
			}
			i++
		}
	}
	if i != len(acked) {
		t.Fatalf("%d of %d acknowledged appends after the restart", i, len(acked))
	}
	t.Logf("%d appends acknowledged before the WAL met ENOSPC, all there after the restart", len(acked))
}
