package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/annals/annals/server"
)

// help and version are commands without flags: their help is their line.
func TestHelpOfFlaglessCommands(t *testing.T) {
	for _, name := range []string{"help", "version"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"help", name}, nil, &stdout, &stderr); code != exitOK ||
			!strings.HasPrefix(stdout.String(), "annals "+name+": ") {
			t.Errorf("annals help %s: exit %d, stdout %q, stderr %q", name, code, stdout.String(), stderr.String())
		}
	}
}

// The product's version and the protocol version it advertises, both.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, nil, &stdout, &stderr)
		out := stdout.String()
		if code != exitOK || stderr.Len() != 0 || !strings.HasPrefix(out, "annals "+version+" ") ||
			!strings.Contains(out, server.ServerVersion) {
			t.Errorf("annals %v: exit %d, stdout %q, stderr %q", args, code, out, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, nil, &stdout, &stderr); code != exitUsage {
		t.Errorf("annals version extra: exit %d", code)
	}
}
