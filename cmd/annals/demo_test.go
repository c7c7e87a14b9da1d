package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestDemoSeats(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"demo", "seats", "--seats", "40", "--clients", "16", "--reservations", "120", "--cancel-percent", "20"}
	if code := run(context.Background(), args, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"reservations accepted:", "rejected, not enough seats:", "conflicts retried:", "commands/s",
		"capacity 40", "never more than the capacity"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report does not say %q:\n%s", want, out)
		}
	}

	for _, bad := range [][]string{{"demo"}, {"demo", "bank"}, {"demo", "seats", "--clients", "20000"}} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), bad, nil, &stdout, &stderr); code == exitOK {
			t.Errorf("annals %v: exit 0", bad)
		}
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"demo", "seats", "-h"}, nil, &stdout, &stderr); code != exitOK ||
		!strings.Contains(stdout.String(), "--reservations") {
		t.Errorf("annals demo seats -h: exit %d, %s", code, stdout.String())
	}
}

// A value out of range is a usage error (exit 2), 0 included: the flags
// default to the defaults, so a 0 was typed.
func TestDemoSeatsFlagsOutOfRange(t *testing.T) {
	for _, bad := range [][]string{{"--seats", "0"}, {"--clients", "0"}, {"--seats", "-5"}, {"--max-attempts", "0"},
		{"--duration", "0s"}, {"--cancel-percent", "101"}} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"demo", "seats", "--reservations", "5"}, bad...)
		if bad[0] == "--duration" {
			args = append([]string{"demo", "seats"}, bad...)
		}
		if code := run(context.Background(), args, nil, &stdout, &stderr); code != exitUsage || stdout.Len() != 0 {
			t.Errorf("annals %v: exit %d, want %d; stdout %q stderr %q", args, code, exitUsage, stdout.String(), stderr.String())
		}
	}
}

// The run ends on its deadline while calls are in flight to a server: a
// call that fails on that deadline ends the run, it is not a failure, and
// the report and the verification follow. Several short runs, since the
// failure came from a race at the deadline.
func TestDemoSeatsServerDeadline(t *testing.T) {
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir())
	defer stop()
	url := "kurrentdb://" + addr + "?tls=false"
	for i := range 6 {
		var stdout, stderr bytes.Buffer
		args := []string{"demo", "seats", "--server", url, "--duration", "300ms", "--clients", "50"}
		if code := run(context.Background(), args, nil, &stdout, &stderr); code != exitOK {
			t.Fatalf("run %d: exit %d\nstdout %s\nstderr %s", i, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), "never more than the capacity") {
			t.Fatalf("run %d: no verification in the report:\n%s", i, stdout.String())
		}
	}
}

// TestDemoPurge: the purge demo on a fresh embedded store and through a
// server, and its flags out of range refused.
func TestDemoPurge(t *testing.T) {
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir())
	defer stop()
	for _, where := range [][]string{nil, {"--server", "kurrentdb://" + addr + "?tls=false"}} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"demo", "purge", "--users", "60", "--todos", "5", "--in-flight", "3"}, where...)
		if code := run(context.Background(), args, nil, &stdout, &stderr); code != exitOK {
			t.Fatalf("annals %v: exit %d\nstdout %s\nstderr %s", args, code, stdout.String(), stderr.String())
		}
		for _, want := range []string{"seeded 60 lists of 5 todos (180 completed)", "at most ", "(limit 3)", "each purged once, 180 todos purged of 180 completed"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("annals %v: the report does not say %q:\n%s", args, want, stdout.String())
			}
		}
	}
	for _, bad := range [][]string{{"--users", "0"}, {"--todos", "1001"}, {"--in-flight", "0"}, {"--users", "10001"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"demo", "purge"}, bad...), nil, &stdout, &stderr); code != exitUsage {
			t.Errorf("annals demo purge %v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}
