// Package privfs is pebble's file system with the owner's permissions
// only: directories 0700, files 0600, whatever the umask. A store's files
// hold every event, so no other local user may read them.
package privfs

import (
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Permissions of what the stores create.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// FS is vfs.Default creating directories DirMode and files FileMode.
func FS() vfs.FS { return privateFS{vfs.Default} }

// Wrap is fs (vfs.Default if nil) creating directories DirMode and files
// FileMode. fs must name files on the operating system's file system (a
// wrapper of vfs.Default that injects faults, say): the modes are set
// there.
func Wrap(fs vfs.FS) vfs.FS {
	if fs == nil {
		fs = vfs.Default
	}
	return privateFS{fs}
}

// mkdir creates dir DirMode, whatever the umask, if it is missing. An
// existing directory keeps its mode: it may be the user's own.
func mkdir(dir string, mk func(string, os.FileMode) error) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mk(dir, DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, DirMode)
}

type privateFS struct{ vfs.FS }

// private sets name's mode after the embedded FS made it with 0666 less
// the umask.
func private(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	if cerr := os.Chmod(name, FileMode); cerr != nil {
		f.Close()
		return nil, cerr
	}
	return f, nil
}

func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, category)
	return private(name, f, err)
}

func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, category, opts...)
	return private(name, f, err)
}

func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, category)
	return private(newname, f, err)
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error { return mkdir(dir, p.FS.MkdirAll) }

func (p privateFS) Lock(name string) (io.Closer, error) {
	l, err := p.FS.Lock(name)
	if err == nil {
		err = os.Chmod(name, FileMode)
	}
	return l, err
}
