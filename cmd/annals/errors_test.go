package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

// The same mistake says the same thing on a local store and through a
// server; a server that cannot be reached, or that speaks no TLS to a
// client that does, is said so, in words, never as the client's codes.
func TestErrorsLocalAndRemote(t *testing.T) {
	c := newCLI(t)
	c.ok("", "append", "--stream", "order-1", "--type", "A")
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir())
	defer stop()
	url := "kurrentdb://" + addr + "?tls=false"
	r := c.run("", "append", "--server", url, "--stream", "order-1", "--type", "A")
	if r.code != exitOK {
		t.Fatalf("append through the server: %+v", r)
	}
	for _, args := range [][]string{
		{"read", "--stream", "nope"},
		{"append", "--stream", "order-1", "--expected", "5", "--type", "B"},
		{"append", "--stream", "order-1", "--expected", "no-stream", "--type", "B"},
	} {
		local := c.run("", args...)
		remote := runArgs(append(args, "--server", url)...)
		if local.code != exitFailure || remote.code != local.code || remote.stderr != local.stderr {
			t.Errorf("annals %v: local exit %d %q, through the server exit %d %q", args, local.code, local.stderr, remote.code, remote.stderr)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tc := range []struct{ url, want string }{
		{"kurrentdb://" + closed + "?tls=false", "cannot reach server at " + closed},
		{"kurrentdb://" + addr, "add ?tls=false"},
	} {
		r := runArgs("read", "--stream", "order-1", "--server", tc.url)
		if r.code != exitFailure || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("read --server %s: exit %d, stderr %q, want %q", tc.url, r.code, r.stderr, tc.want)
		}
		for _, raw := range []string{"[Error", "discovery", "rpc error"} {
			if strings.Contains(r.stderr, raw) {
				t.Errorf("read --server %s: stderr %q leaks the client's %q", tc.url, r.stderr, raw)
			}
		}
	}
}

// runArgs runs `annals args...` with no stdin.
func runArgs(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}
