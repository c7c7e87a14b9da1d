package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
)

// projectionServer serves a memory store on a loopback port with one
// running projector in its registry, over the memory target: "orders",
// which parks the events of type Bad until fixed is set; and a stopped
// one, "shop/orders".
type projectionServer struct {
	url   string // --server
	store annals.Store
	pr    *projection.Projector[projection.KV]
	fixed atomic.Bool
}

func startProjectionServer(t *testing.T, creds server.Credentials) *projectionServer {
	t.Helper()
	ps := &projectionServer{store: memory.New(memory.Options{})}
	for _, typ := range []string{"Placed", "Bad", "Placed", "Placed"} {
		if _, err := ps.store.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: typ, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	pr, err := projection.New(ps.store, projection.NewMemory(), projection.Projection[projection.KV]{
		Name: "orders",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			if e.Type == "Bad" && !ps.fixed.Load() {
				return errors.New("cannot handle Bad")
			}
			return kv.Set([]byte(e.ID.String()), nil)
		},
		Reset:  func(ctx context.Context, kv projection.KV) error { return kv.DeletePrefix(nil) },
		Policy: projection.ErrorPolicy{MaxRetries: -1, OnFailure: projection.Park},
	}, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps.pr = pr
	// A second one, never started, whose name holds a '/'.
	shop, err := projection.New(ps.store, projection.NewMemory(), projection.Projection[projection.KV]{
		Name:   "shop/orders",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error { return nil },
	}, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := projection.NewRegistry()
	for _, c := range []projection.Controller{pr, shop} {
		if err := reg.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pr.Stop()
		ps.store.Close()
	})
	ps.url = "kurrentdb://" + teststores.ServeStore(t, ps.store, server.Options{Projections: serveproj.Registry(reg), Credentials: creds}) + "?tls=false"
	ps.waitFor(t, "catching up", func(st projection.Status) bool { return st.Position == 4 && st.Parked == 1 })
	return ps
}

func (ps *projectionServer) waitFor(t *testing.T, what string, cond func(projection.Status) bool) projection.Status {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		st, err := ps.pr.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// annals runs the command line args and returns its exit code and output.
func annalsCmd(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// projectionsOK runs `annals projections args... --server URL`, which must
// succeed quietly, and returns its output.
func (ps *projectionServer) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := annalsCmd(append(append([]string{"projections"}, args...), "--server", ps.url)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("annals projections %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// tableRow returns the fields of the table row of name in out.
func tableRow(t *testing.T, out, name string) []string {
	t.Helper()
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "NAME ") || !strings.Contains(lines[0], "LAST ERROR") {
		t.Fatalf("no table header: %q", out)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row of %s in %q", name, out)
	return nil
}

func TestProjectionsCommand(t *testing.T) {
	ps := startProjectionServer(t, nil)

	// list (the default), as a table: name, state, position, head, lag,
	// events/s, parked, last error.
	for _, args := range [][]string{nil, {"list"}} {
		row := tableRow(t, ps.ok(t, args...), "orders")
		if got := strings.Join(row[:5], " "); got != "orders running 4 4 0" || row[6] != "1" ||
			!strings.Contains(strings.Join(row[7:], " "), "cannot handle Bad") {
			t.Fatalf("list %v: row %q", args, row)
		}
	}
	lines := jsonLines(t, ps.ok(t, "list", "--json"))
	if len(lines) != 2 || str(t, lines[0], "name") != "orders" || str(t, lines[0], "state") != "running" ||
		num(t, lines[0], "position") != 4 || num(t, lines[0], "parked") != 1 || str(t, lines[1], "name") != "shop/orders" {
		t.Fatalf("list --json: %v", lines)
	}
	if row := tableRow(t, ps.ok(t, "status", "orders"), "orders"); row[1] != "running" {
		t.Fatalf("status: %q", row)
	}
	if row := tableRow(t, ps.ok(t, "status", "shop/orders"), "shop/orders"); strings.Join(row, " ") != "shop/orders stopped 0 4 4 0.0 0" {
		t.Fatalf("status of shop/orders: %q", row)
	}
	// A stopped projector cannot rebuild beside itself: a conflict.
	r := annalsCmd("projections", "rebuild", "shop/orders", "--server", ps.url)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not running") || !strings.Contains(r.stderr, "409") {
		t.Fatalf("rebuild of a stopped projector: exit %d, stderr %q", r.code, r.stderr)
	}
	// A projection without a Reset func refuses a reset.
	r = annalsCmd("projections", "reset", "shop/orders", "--server", ps.url)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no Reset func") || !strings.Contains(r.stderr, "409") {
		t.Fatalf("reset without a Reset func: exit %d, stderr %q", r.code, r.stderr)
	}

	// parked: a table, or JSON lines; flags before or after the words.
	out := ps.ok(t, "parked", "orders")
	if !strings.HasPrefix(out, "POSITION ") || !strings.Contains(out, "order-1") || !strings.Contains(out, "cannot handle Bad") {
		t.Fatalf("parked: %q", out)
	}
	r = annalsCmd("projections", "--json", "--server", ps.url, "parked", "--limit", "1", "orders")
	if r.code != 0 {
		t.Fatalf("parked --json: %d %s", r.code, r.stderr)
	}
	if lines := jsonLines(t, r.stdout); len(lines) != 1 || num(t, lines[0], "position") != 2 || str(t, lines[0], "type") != "Bad" {
		t.Fatalf("parked --json: %v", lines)
	}

	// pause: the projector is paused and applies nothing more.
	if row := tableRow(t, ps.ok(t, "pause", "orders"), "orders"); row[1] != "paused" {
		t.Fatalf("pause printed %q", row)
	}
	ps.store.Append(context.Background(), "order-2", annals.Any, annals.EventData{Type: "Placed", Data: []byte(`{}`)})
	time.Sleep(50 * time.Millisecond)
	if st := ps.waitFor(t, "paused", func(st projection.Status) bool { return st.State == projection.Paused }); st.Position != 4 || st.Lag != 1 {
		t.Fatalf("paused, yet %+v", st)
	}
	lines = jsonLines(t, ps.ok(t, "resume", "orders", "--json"))
	if len(lines) != 1 || str(t, lines[0], "state") == "paused" {
		t.Fatalf("resume --json: %v", lines)
	}
	ps.waitFor(t, "resumed", func(st projection.Status) bool { return st.State == projection.Running && st.Position == 5 })

	// replay-parked: once the handler is fixed, the parked event applies.
	ps.fixed.Store(true)
	out = ps.ok(t, "replay-parked", "orders")
	if !strings.Contains(out, "replayed 1 parked events") || tableRow(t, out, "orders")[6] != "0" {
		t.Fatalf("replay-parked: %q", out)
	}
	if out := ps.ok(t, "parked", "orders"); strings.Count(out, "\n") != 1 {
		t.Fatalf("parked after the replay: %q", out)
	}
	lines = jsonLines(t, ps.ok(t, "replay-parked", "orders", "--json"))
	if len(lines) != 1 || num(t, lines[0], "replayed") != 0 {
		t.Fatalf("replay-parked --json: %v", lines)
	}

	// rebuild: a blue/green rebuild starts and switches to generation 1.
	ps.ok(t, "rebuild", "orders")
	st := ps.waitFor(t, "the rebuild's switch", func(st projection.Status) bool {
		return st.Generation == 1 && st.State == projection.Running && st.Position == 5
	})
	if st.Rebuild != nil {
		t.Fatalf("after the switch: %+v", st)
	}

	// reset: the model is emptied and the log replayed.
	ps.ok(t, "reset", "orders")
	ps.waitFor(t, "the replay after the reset", func(st projection.Status) bool {
		return st.State == projection.Running && st.Position == 5 && st.Parked == 0
	})
}

func TestProjectionsCommandErrors(t *testing.T) {
	ps := startProjectionServer(t, nil)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "nope"}, exitFailure, `no projection "nope"`},
		{[]string{"pause", "nope"}, exitFailure, `no projection "nope"`},
		{[]string{"pause"}, exitUsage, "needs a projection's name"},
		{[]string{"frobnicate", "orders"}, exitUsage, `unknown action "frobnicate"`},
		{[]string{"list", "orders"}, exitUsage, "list takes no name"},
		{[]string{"pause", "orders", "carts"}, exitUsage, "one projection at a time"},
		{[]string{"parked", "orders", "--limit", "0"}, exitUsage, "--limit 0"},
		{[]string{"parked", "orders", "--limit", "1001"}, exitUsage, "--limit 1001"},
		{[]string{"status", "orders", "--limit", "5"}, exitUsage, "--limit goes with parked"},
		{[]string{"status", "orders", "--nope"}, exitUsage, "flag provided but not defined"},
	} {
		r := annalsCmd(append(append([]string{"projections"}, tc.args...), "--server", ps.url)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("annals projections %s: exit %d, stderr %q, stdout %q; want exit %d saying %q",
				strings.Join(tc.args, " "), r.code, r.stderr, r.stdout, tc.code, tc.want)
		}
	}

	// A state that refuses: a second rebuild while one runs is a conflict.
	ps.pr.Pause() // the builder waits for its parent: the rebuild stays in progress
	ps.ok(t, "rebuild", "orders")
	r := annalsCmd("projections", "rebuild", "orders", "--server", ps.url)
	if r.code != exitFailure || !strings.Contains(r.stderr, "rebuild is in progress") || !strings.Contains(r.stderr, "409") {
		t.Errorf("a second rebuild: exit %d, stderr %q", r.code, r.stderr)
	}
	ps.pr.Resume()

	// No server there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r = annalsCmd("projections", "--server", "kurrentdb://"+addr+"?tls=false")
	if r.code != exitFailure || !strings.Contains(r.stderr, "is a server running there?") {
		t.Errorf("no server: exit %d, stderr %q", r.code, r.stderr)
	}
	r = annalsCmd("projections", "--server", "nonsense://x")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--server") {
		t.Errorf("a bad --server: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestProjectionsCommandCredentials(t *testing.T) {
	ps := startProjectionServer(t, server.AdminCredentials("secret"))
	addr := strings.TrimSuffix(strings.TrimPrefix(ps.url, "kurrentdb://"), "?tls=false")

	r := annalsCmd("projections", "pause", "orders", "--server", ps.url)
	if r.code != exitFailure || !strings.Contains(r.stderr, "requires credentials") || !strings.Contains(r.stderr, "401") {
		t.Fatalf("without credentials: exit %d, stderr %q", r.code, r.stderr)
	}
	r = annalsCmd("projections", "--server", "kurrentdb://admin:wrong@"+addr+"?tls=false")
	if r.code != exitFailure || !strings.Contains(r.stderr, "bad credentials") {
		t.Fatalf("bad credentials: exit %d, stderr %q", r.code, r.stderr)
	}
	if st, _ := ps.pr.Status(context.Background()); st.State != projection.Running {
		t.Fatalf("a refused pause acted: %+v", st)
	}
	for _, url := range []string{"kurrentdb://admin:secret@" + addr + "?tls=false", "http://admin:secret@" + addr} {
		r = annalsCmd("projections", "pause", "orders", "--server", url)
		if r.code != 0 || !strings.Contains(r.stdout, "paused") {
			t.Fatalf("with credentials in %s: exit %d, stderr %q, stdout %q", url, r.code, r.stderr, r.stdout)
		}
	}
}

// A default `annals serve` answers the projections endpoint: none yet.
func TestProjectionsServeEmpty(t *testing.T) {
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir())
	defer stop()
	resp, err := http.Get("http://" + addr + "/api/projections")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"projections":[]}` {
		t.Fatalf("GET /api/projections: %d %q", resp.StatusCode, body)
	}
	r := annalsCmd("projections", "--server", "kurrentdb://"+addr+"?tls=false")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(r.stdout, "NAME") {
		t.Fatalf("an empty list: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := annalsCmd("projections", "--json", "--server", "kurrentdb://"+addr+"?tls=false"); r.code != 0 || r.stdout != "" {
		t.Fatalf("an empty list in JSON: exit %d, stdout %q", r.code, r.stdout)
	}
}
