package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
)

// serveProjections serves a fresh store with opts on a loopback port, with
// reg (unless nil) holding one running projector of it, and returns the
// base URL and the projector.
func serveProjections(t *testing.T, reg *projection.Registry, opts server.Options) (string, *projection.Projector[projection.KV]) {
	t.Helper()
	store := teststores.Embedded(t)
	for range 5 {
		if _, err := store.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: "Placed", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	pr, err := projection.New(store, projection.NewMemory(), projection.Projection[projection.KV]{
		Name: "orders",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			return kv.Set([]byte(e.Stream), e.Data)
		},
		Reset: func(ctx context.Context, kv projection.KV) error { return kv.DeletePrefix(nil) },
	}, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Stop() }) // after the server, before the store
	// A second one, whose name holds a '/' (it goes escaped in paths).
	shop, err := projection.New(store, projection.NewMemory(), projection.Projection[projection.KV]{
		Name:   "shop/orders",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error { return nil },
	}, projection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reg != nil {
		for _, c := range []projection.Controller{pr, shop} {
			if err := reg.Add(c); err != nil {
				t.Fatal(err)
			}
		}
		opts.Projections = serveproj.Registry(reg)
	}
	addr := teststores.ServeStore(t, store, opts)
	deadline := time.Now().Add(hangGuard)
	for pr.Position() < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the projector does not catch up")
		}
		time.Sleep(time.Millisecond)
	}
	return "http://" + addr, pr
}

// do sends a request, with Basic credentials if user is not empty, and
// returns the code and the body decoded into a map.
func do(t *testing.T, method, url, user, pass string) (int, map[string]any) {
	t.Helper()
	code, m, _ := doChallenged(t, method, url, user, pass)
	return code, m
}

// doChallenged is do, returning the WWW-Authenticate header too.
func doChallenged(t *testing.T, method, url, user, pass string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if ct := resp.Header.Get("Content-Type"); ct == "application/json" {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s %s: %v: %q", method, url, err, body)
		}
	}
	return resp.StatusCode, m, resp.Header.Get("WWW-Authenticate")
}

func TestProjectionsHTTP(t *testing.T) {
	base, pr := serveProjections(t, projection.NewRegistry(), server.Options{})

	code, m := do(t, "GET", base+"/api/projections", "", "")
	list, _ := m["projections"].([]any)
	if code != 200 || len(list) != 2 || list[1].(map[string]any)["name"] != "shop/orders" {
		t.Fatalf("list: %d %v", code, m)
	}
	if st := list[0].(map[string]any); st["name"] != "orders" || st["state"] != "running" || st["position"] != 5.0 || st["head"] != 5.0 {
		t.Fatalf("listed %v", st)
	}
	if code, m := do(t, "POST", base+"/api/projections/orders/pause", "", ""); code != 200 || m["state"] != "paused" {
		t.Fatalf("pause: %d %v", code, m)
	}
	if st, _ := pr.Status(context.Background()); st.State != projection.Paused {
		t.Fatalf("after pause: %+v", st)
	}
	if code, m := do(t, "POST", base+"/api/projections/orders/resume", "", ""); code != 200 || m["state"] != "running" {
		t.Fatalf("resume: %d %v", code, m)
	}
	if code, m := do(t, "GET", base+"/api/projections/orders/parked?limit=10", "", ""); code != 200 || m["parked"] == nil {
		t.Fatalf("parked: %d %v", code, m)
	}
	if code, m := do(t, "POST", base+"/api/projections/orders/replay-parked", "", ""); code != 200 || m["replayed"] != 0.0 {
		t.Fatalf("replay-parked: %d %v", code, m)
	}
	// shop/orders never ran: stopped, its stored checkpoint 0.
	if code, m := do(t, "GET", base+"/api/projections/shop%2Forders", "", ""); code != 200 || m["name"] != "shop/orders" || m["state"] != "stopped" || m["lag"] != 5.0 {
		t.Fatalf("shop/orders: %d %v", code, m)
	}
	if code, m := do(t, "GET", base+"/api/projections/missing", "", ""); code != 404 || !strings.Contains(m["error"].(string), "missing") {
		t.Fatalf("missing: %d %v", code, m)
	}
	if code, _ := do(t, "GET", base+"/api/projections/orders/pause", "", ""); code != 405 {
		t.Fatalf("GET pause: %d", code)
	}
	// The rest of the server's HTTP is untouched.
	if code, _ := do(t, "GET", base+"/health/live", "", ""); code != 204 {
		t.Fatalf("/health/live: %d", code)
	}
}

func TestProjectionsHTTPNotServed(t *testing.T) {
	base, _ := serveProjections(t, nil, server.Options{})
	if code, _ := do(t, "GET", base+"/api/projections", "", ""); code != 404 {
		t.Fatalf("without a registry: %d, want 404", code)
	}
}

func TestProjectionsHTTPCredentials(t *testing.T) {
	base, pr := serveProjections(t, projection.NewRegistry(), server.Options{Credentials: server.AdminCredentials("secret")})

	for _, tc := range []struct{ method, path, user, pass string }{
		{"GET", "/api/projections", "", ""},
		{"GET", "/api/projections/orders", "admin", "wrong"},
		{"GET", "/api/projections/orders/parked", "", ""},
		{"POST", "/api/projections/orders/pause", "", ""},
		{"POST", "/api/projections/orders/pause", "someone", "secret"},
		{"POST", "/api/projections/nope/pause", "", ""},
	} {
		code, m, challenge := doChallenged(t, tc.method, base+tc.path, tc.user, tc.pass)
		if code != http.StatusUnauthorized || m["error"] == nil || !strings.HasPrefix(challenge, "Basic ") {
			t.Errorf("%s %s as %q: %d %v (WWW-Authenticate %q), want 401 with a Basic challenge", tc.method, tc.path, tc.user, code, m, challenge)
		}
	}
	if st, _ := pr.Status(context.Background()); st.State != projection.Running {
		t.Fatalf("refused requests acted: %+v", st)
	}

	if code, m := do(t, "GET", base+"/api/projections/orders", "admin", "secret"); code != 200 || m["name"] != "orders" {
		t.Fatalf("status with credentials: %d %v", code, m)
	}
	if code, m := do(t, "POST", base+"/api/projections/orders/pause", "admin", "secret"); code != 200 || m["state"] != "paused" {
		t.Fatalf("pause with credentials: %d %v", code, m)
	}
	// The liveness probe stays open, as the gRPC handshake does.
	if code, _ := do(t, "GET", base+"/health/live", "", ""); code != 204 {
		t.Fatalf("/health/live: %d", code)
	}
}
