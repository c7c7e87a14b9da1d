package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A directory that holds other files is no store: no command writes a
// store's files among them, and each says so.
func TestNotAStoreDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"read", "--stream", "a"}, {"read-all"}, {"subscribe"},
		{"append", "--stream", "a", "--type", "T"}, {"demo", "seats", "--reservations", "1"},
		{"serve", "--listen", "127.0.0.1:0"},
	} {
		var stdout, stderr bytes.Buffer
		args = append(args, "--db", dir)
		code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		if code != exitFailure || !strings.Contains(stderr.String(), "no store in "+dir) {
			t.Errorf("annals %v: exit %d, stderr %q", args, code, stderr.String())
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"notes.txt"}) {
			t.Fatalf("annals %v wrote into the directory: %v", args, names)
		}
	}
	// A store is still a store, and a new directory still becomes one.
	c := newCLI(t)
	c.ok("", "append", "--stream", "a", "--type", "T")
	checkEvents(t, c.ok("", "read", "--stream", "a"), "a@0#1")
}
