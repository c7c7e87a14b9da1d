package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// A subscription from past the end of the log, as on KurrentDB: live at
// once, it delivers the events from --from on. It says so on stderr and
// reports caught up at the log's real last position, not at one that
// does not exist.
func TestSubscribePastTheHead(t *testing.T) {
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir())
	defer stop()
	url := "kurrentdb://" + addr + "?tls=false"
	for range 2 {
		if r := runArgs("append", "--server", url, "--stream", "s-1", "--type", "T"); r.code != exitOK {
			t.Fatalf("append: %+v", r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"subscribe", "--server", url, "--from", "5"}, strings.NewReader(""), &stdout, &stderr)
	}()
	waitLines := func(n int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second) // a hang guard
		for strings.Count(stdout.String(), "\n") < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %d lines: stdout %q, stderr %q", n, stdout.String(), stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return jsonLines(t, stdout.String())
	}
	lines := waitLines(1)
	if lines[0]["caughtUp"] != true || num(t, lines[0], "position") != 2 {
		t.Fatalf("first line %v, want caught up at position 2, the last one", lines[0])
	}
	if !strings.Contains(stderr.String(), "--from 5 is past the end (the log's last position is 2)") {
		t.Errorf("stderr %q does not say --from is past the end", stderr.String())
	}
	for range 4 {
		if r := runArgs("append", "--server", url, "--stream", "s-1", "--type", "T"); r.code != exitOK {
			t.Fatalf("append: %+v", r)
		}
	}
	lines = waitLines(3)
	checkEvents(t, lines[1:], "s-1@4#5", "s-1@5#6")
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("subscribe exited %d, stderr %q", code, stderr.String())
	}
}
