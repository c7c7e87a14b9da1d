package main

import (
	"bytes"
	"context"
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
