// Package testdisk gives tests a real small filesystem to fill: an ext4
// image mounted on a loop device. It needs root; without root (or without
// loop devices) the test skips, except under CI=true, where it fails.
package testdisk

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount makes an ext4 filesystem of sizeBytes, mounts it for the test and
// returns its mount point. It is unmounted when the test ends (register
// anything that holds files on it after calling Mount, so it closes first).
func Mount(t testing.TB, sizeBytes int64) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("testdisk (CI=true, so this fails): "+format, args...)
		}
		t.Skipf("testdisk: "+format+" (a test on a small real disk; run as root)", args...)
	}
	if os.Geteuid() != 0 {
		unavailable("not root: cannot mount a loop device")
	}
	tmp := t.TempDir()
	img, dir := filepath.Join(tmp, "disk.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(sizeBytes)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// -m 0: no blocks reserved for root, so root sees the same free space
	// as everyone else.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		unavailable("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		unavailable("mount -o loop: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Free is the space an unprivileged writer may still use on dir's
// filesystem.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// Fill writes the ballast file path until the filesystem has at most
// leaveBytes free (0: until it refuses with ENOSPC), and syncs it.
func Fill(t testing.TB, path string, leaveBytes int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		n := Free(t, filepath.Dir(path)) - leaveBytes
		if n <= 0 && leaveBytes > 0 {
			break
		}
		if n > 0 && n < int64(len(buf)) {
			buf = buf[:n]
		}
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
	}
	// A full disk may still take a few small writes (fragments of blocks
	// ext4 keeps back); the disk is "full" once the ballast took them.
	if leaveBytes == 0 {
		fillRemainder(f)
	}
}

func fillRemainder(f *os.File) {
	small := make([]byte, 4096)
	for {
		if _, err := f.Write(small); err != nil {
			return
		}
		if f.Sync() != nil {
			return
		}
	}
}

// String describes dir's free space, for test logs.
func String(t testing.TB, dir string) string {
	return fmt.Sprintf("%.1f MiB free", float64(Free(t, dir))/(1<<20))
}
