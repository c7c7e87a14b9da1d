package privfs_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/privfs"
	"github.com/annals/annals/projection"
)

// checkPrivate fails the test for anything under dir that another user
// could read.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := privfs.FileMode
		if d.IsDir() {
			want = privfs.DirMode
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("only %d entries under %s", n, dir)
	}
}

// The embedded store's and the pebble read models' directories and files
// are the owner's only, under a permissive umask too.
func TestStoresArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	store, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: "Placed", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, dir)

	models := filepath.Join(t.TempDir(), "data.read-models")
	p, err := projection.OpenPebble(models)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, models)
}
