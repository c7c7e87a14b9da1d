package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/process"
	"github.com/google/uuid"
)

// TestProcessesCommand: a manager runs in another process (this test,
// through the official protocol) on the served store; annals processes
// lists it, shows its failed instance and its history, and queues a retry
// and an abandon that the run takes.
func TestProcessesCommand(t *testing.T) {
	hooks := make(chan string, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- string(b)
	}))
	defer hook.Close()
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir(), "--alert-webhook", hook.URL, "--alert-interval", "20ms")
	defer stop()
	url := "kurrentdb://" + addr + "?tls=false"
	store := teststores.Dial(t, url)
	var fixed atomic.Bool
	c := codec.New[struct{}](codec.Options{})
	m := &process.Manager[struct{}, struct{}]{
		Name:      "orders",
		Filter:    annals.StreamPrefixFilter("order-"),
		Correlate: func(e annals.Event) (string, bool) { return strings.TrimPrefix(e.Stream, "order-"), true },
		Initial:   func() struct{} { return struct{}{} },
		Evolve:    func(s struct{}, _ struct{}) struct{} { return s },
		Decide: func(s struct{}, in process.Input) ([]struct{}, process.Decision, error) {
			return nil, process.Decision{Commands: []process.Command{{Stream: "stock-1", Type: "take"}}, Finish: true}, nil
		},
		Codec: c,
	}
	d := process.Routes{"take": {
		Send: func(context.Context, string, json.RawMessage, uuid.UUID) error {
			if fixed.Load() {
				return nil
			}
			return process.ErrRefused
		},
		Taken: func(context.Context, string, uuid.UUID) (bool, error) { return false, nil },
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, store, d, process.Options{Holder: "orders-run"}) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("the run: %v", err)
		}
	}()
	store.Append(ctx, "order-7", annals.Any, annals.EventData{Type: "OrderPlaced"})
	cli := func(args ...string) string {
		t.Helper()
		r := annalsCmd(append(append([]string{"processes"}, args...), "--server", url)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("annals processes %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	waitOut := func(done func(string) bool, args ...string) string {
		t.Helper()
		for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if out := cli(args...); done(out) {
				return out
			}
		}
		t.Fatalf("annals processes %s never came to what the test waits for", strings.Join(args, " "))
		return ""
	}
	finished := func(out string) bool { row := managerRow(out, "orders"); return len(row) > 2 && row[2] == "1" }
	if row := managerRow(waitOut(finished, "list"), "orders"); strings.Join(row, " ") != "orders 1 1 0 1 0 orders-run" {
		t.Errorf("list: %v", row)
	}
	select { // the admin is told, once
	case body := <-hooks:
		if !strings.Contains(body, `"kind":"process_failed"`) || !strings.Contains(body, `"subject":"orders/7"`) || !strings.Contains(body, "take on stock-1") {
			t.Errorf("the webhook's body: %s", body)
		}
	case <-time.After(hangGuard):
		t.Fatal("no webhook for the failed instance")
	}
	if out := cli("show", "orders"); !strings.Contains(out, "failed") || !strings.Contains(out, "take on stock-1") {
		t.Errorf("show:\n%s", out)
	}
	if out := cli("instance", "orders", "7"); !strings.Contains(out, "Decided") || !strings.Contains(out, "Failed") {
		t.Errorf("instance:\n%s", out)
	}
	fixed.Store(true)
	if out := cli("retry", "orders", "7"); !strings.Contains(out, "queued: retry of orders/7") {
		t.Errorf("retry: %s", out)
	}
	waitOut(func(out string) bool { return strings.Contains(out, "7: done") }, "instance", "orders", "7")
	if r := annalsCmd("processes", "retry", "orders", "7", "--server", url); r.code == 0 || !strings.Contains(r.stderr, "409") {
		t.Errorf("a retry of a done instance: exit %d, %q", r.code, r.stderr)
	}
	select {
	case body := <-hooks:
		t.Errorf("a second webhook: %s", body)
	default:
	}
	for _, args := range [][]string{{"show"}, {"explode"}, {"list", "x"}, {"show", "orders", "--reason", "r"}} {
		if r := annalsCmd(append(append([]string{"processes"}, args...), "--server", url)...); r.code != 2 {
			t.Errorf("annals processes %v: exit %d, want 2 (usage)", args, r.code)
		}
	}
	if r := annalsCmd("processes", "show", "nope", "--server", url); r.code != 1 || !strings.Contains(r.stderr, "no manager") {
		t.Errorf("show nope: exit %d, %q", r.code, r.stderr)
	}
}

// managerRow is the fields of the row of manager name in a listing.
func managerRow(out, name string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}
