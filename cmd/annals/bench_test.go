package main

import (
	"io"
	"strings"
	"testing"
)

// bench against a user's server writes only when told to; bench and
// projections open no store, so --db is refused, not ignored.
func TestBenchAndProjectionsRefuse(t *testing.T) {
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir())
	defer stop()
	url := "kurrentdb://" + addr + "?tls=false"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--server", url, "--writers", "1", "--duration", "10ms"}, "add --yes"},
		{[]string{"bench", "--yes", "--writers", "1", "--duration", "10ms"}, "--yes goes with --server"},
		{[]string{"bench", "--db", "somewhere"}, "-db"},
		{[]string{"projections", "--db", "somewhere"}, "-db"},
	} {
		r := runArgs(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("annals %v: exit %d, stderr %q, want exit %d saying %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	if r := runArgs("read-all", "--server", url); r.code != exitOK || r.stdout != "" {
		t.Fatalf("the server's store after the refusals: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
