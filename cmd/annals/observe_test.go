package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeObservation: annals serve answers /info, /health/ready and
// /metrics, with the projections' and groups' series among the store's.
func TestServeObservation(t *testing.T) {
	n := startServe(t, "--db", t.TempDir(), "--projection", builtinProjections[0], "--log-format", "json", "--log-level", "warn")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + n.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/info")
	var info map[string]any
	if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil || info["store"] != "embedded" || info["version"] != version {
		t.Errorf("/info: %d %s", code, body)
	}
	if code, body := get("/health/ready"); code != http.StatusNoContent {
		t.Errorf("/health/ready: %d %s", code, body)
	}
	if code, body := get("/api/processes"); code != 200 || !strings.Contains(body, `"managers":[]`) {
		t.Errorf("/api/processes: %d %s", code, body)
	}
	code, body = get("/metrics")
	for _, want := range []string{
		`annals_appends_total{outcome="ok"}`,
		`annals_projection_state{projection="` + builtinProjections[0] + `"`,
		"annals_store_used_bytes", "annals_head_position", "go_goroutines",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
}

func TestServeRefusesLogFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--log-format", "xml"}, "--log-format"},
		{[]string{"serve", "--log-level", "loud"}, "--log-level"},
		{[]string{"serve", "--alert-webhook", "ftp://example.com/hook"}, "--alert-webhook"},
		{[]string{"serve", "--alert-webhook", "not a url"}, "--alert-webhook"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(tc.args, "--db", t.TempDir()), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("annals %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestJSONLog: --log-format json writes one JSON object per line.
func TestJSONLog(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	logger.Debug("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["level"] != "DEBUG" {
		t.Errorf("log line %q: %v", buf.String(), err)
	}
}
