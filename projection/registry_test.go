package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
	"github.com/google/uuid"
)

// fakeController records the actions asked of it and answers with the
// errors it is given.
type fakeController struct {
	name string

	mu          sync.Mutex
	state       projection.State
	position    annals.Position
	parked      []projection.ParkedEvent
	statusErr   error
	resetErr    error
	rebuildErr  error
	replayErr   error
	lastLimit   int
	calls       []string
	rebuildsRun int
}

func newFake(name string) *fakeController {
	return &fakeController{name: name, state: projection.Running}
}

func (f *fakeController) Name() string { return f.name }

func (f *fakeController) call(c string) {
	f.calls = append(f.calls, c)
}

func (f *fakeController) Status(ctx context.Context) (projection.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return projection.Status{}, f.statusErr
	}
	return projection.Status{Name: f.name, State: f.state, Position: f.position, Head: 10,
		Lag: uint64(10 - f.position), Parked: uint64(len(f.parked))}, nil
}

func (f *fakeController) Pause() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("pause")
	f.state = projection.Paused
	return nil
}

func (f *fakeController) Resume() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("resume")
	f.state = projection.Running
	return nil
}

func (f *fakeController) Reset(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("reset")
	if f.resetErr != nil {
		return f.resetErr
	}
	f.position, f.parked, f.state = 0, nil, projection.Rebuilding
	return nil
}

func (f *fakeController) Rebuild(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("rebuild")
	if f.rebuildErr != nil {
		return f.rebuildErr
	}
	f.rebuildsRun++
	f.state = projection.Rebuilding
	return nil
}

func (f *fakeController) ParkedEvents(ctx context.Context, limit int) ([]projection.ParkedEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastLimit = limit
	return f.parked[:min(limit, len(f.parked))], nil
}

func (f *fakeController) ReplayParked(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("replay-parked")
	if f.replayErr != nil {
		return 0, f.replayErr
	}
	n := len(f.parked)
	f.parked = nil
	return n, nil
}

func (f *fakeController) calledWith() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, ",")
}

func TestRegistry(t *testing.T) {
	var r projection.Registry // the zero value is ready
	for _, name := range []string{"b", "a", "shop/orders"} {
		if err := r.Add(newFake(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add(newFake("a")); !errors.Is(err, projection.ErrDuplicate) {
		t.Errorf("a second a: %v, want ErrDuplicate", err)
	}
	if err := r.Add(newFake("")); !errors.Is(err, projection.ErrInvalid) {
		t.Errorf("an empty name: %v, want ErrInvalid", err)
	}
	if err := r.Add(newFake(strings.Repeat("x", projection.MaxNameBytes+1))); !errors.Is(err, projection.ErrInvalid) {
		t.Errorf("a long name: %v, want ErrInvalid", err)
	}
	if err := r.Add(nil); !errors.Is(err, projection.ErrInvalid) {
		t.Errorf("nil: %v, want ErrInvalid", err)
	}
	if got := strings.Join(r.Names(), " "); got != "a b shop/orders" {
		t.Errorf("names %q", got)
	}
	if c, ok := r.Get("b"); !ok || c.Name() != "b" {
		t.Errorf("Get(b) = %v, %v", c, ok)
	}
	if _, ok := r.Get("c"); ok {
		t.Error("Get(c) found one")
	}

	broken := newFake("broken")
	broken.statusErr = errors.New("target down")
	if err := r.Add(broken); err != nil {
		t.Fatal(err)
	}
	sts, err := r.Statuses(context.Background())
	if err == nil || !strings.Contains(err.Error(), "target down") {
		t.Errorf("Statuses error %v, want the broken one's", err)
	}
	var got []string
	for _, st := range sts {
		got = append(got, st.Name+":"+st.State.String())
	}
	if strings.Join(got, " ") != "a:running b:running broken:unknown shop/orders:running" {
		t.Errorf("statuses %v", got)
	}
	if !strings.Contains(sts[2].LastError, "target down") {
		t.Errorf("broken's status %+v does not say why", sts[2])
	}

	if !r.Remove("broken") || r.Remove("broken") {
		t.Error("Remove reports wrongly")
	}
}

func TestRegistryBounded(t *testing.T) {
	var r projection.Registry
	for i := range projection.MaxRegistered {
		if err := r.Add(newFake(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add(newFake("one more")); !errors.Is(err, projection.ErrRegistryFull) {
		t.Fatalf("one more than MaxRegistered: %v", err)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	var r projection.Registry
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				name := fmt.Sprintf("%d-%d", i, j)
				if err := r.Add(newFake(name)); err != nil {
					t.Error(err)
					return
				}
				r.Get(name)
				r.Names()
				if _, err := r.Statuses(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(r.Names()); n != 400 {
		t.Fatalf("%d names, want 400", n)
	}
}

// call sends a request to the handler and decodes its JSON answer.
func call(t *testing.T, h http.Handler, method, path string, into any) int {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q, body %q", method, path, ct, w.Body)
	}
	if into != nil {
		if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
			t.Fatalf("%s %s: %v: %q", method, path, err, w.Body)
		}
	}
	return w.Code
}

// wantError checks a request fails with code and says want.
func wantError(t *testing.T, h http.Handler, method, path string, code int, want string) {
	t.Helper()
	var body projection.ErrorBody
	if got := call(t, h, method, path, &body); got != code || !strings.Contains(body.Error, want) {
		t.Errorf("%s %s: %d %q, want %d saying %q", method, path, got, body.Error, code, want)
	}
}

func TestHandlerReads(t *testing.T) {
	var r projection.Registry
	h := r.Handler()

	// An empty registry lists [] (not null).
	req := httptest.NewRequest("GET", "/api/projections", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"projections":[]}` {
		t.Fatalf("empty list: %d %q", w.Code, w.Body)
	}

	orders := newFake("shop/orders")
	orders.position = 7
	for i := range 5 {
		orders.parked = append(orders.parked, projection.ParkedEvent{Position: annals.Position(i + 1), EventID: uuid.New(),
			Stream: "order-1", Type: "Paid", Error: "boom", Attempts: 6, ParkedAt: time.Unix(1, 0).UTC()})
	}
	r.Add(orders)
	r.Add(newFake("carts"))

	var list projection.StatusList
	if code := call(t, h, "GET", "/api/projections", &list); code != 200 || len(list.Projections) != 2 ||
		list.Projections[0].Name != "carts" || list.Projections[1].Name != "shop/orders" {
		t.Fatalf("list: %d %+v", code, list)
	}
	if code := call(t, h, "GET", "/api/projections/", &list); code != 200 || len(list.Projections) != 2 {
		t.Fatalf("list with a trailing slash: %d %+v", code, list)
	}

	// The state goes by name, and a '/' in a name goes escaped.
	var st map[string]any
	if code := call(t, h, "GET", "/api/projections/"+url.PathEscape("shop/orders"), &st); code != 200 ||
		st["name"] != "shop/orders" || st["state"] != "running" || st["position"] != 7.0 || st["lag"] != 3.0 || st["parked"] != 5.0 {
		t.Fatalf("status: %d %v", code, st)
	}

	var parked projection.ParkedList
	if code := call(t, h, "GET", "/api/projections/shop%2Forders/parked?limit=2", &parked); code != 200 ||
		len(parked.Parked) != 2 || parked.Parked[1].Position != 2 || parked.Name != "shop/orders" || orders.lastLimit != 2 {
		t.Fatalf("parked: %d %+v (limit %d)", code, parked, orders.lastLimit)
	}
	if code := call(t, h, "GET", "/api/projections/shop%2Forders/parked", &parked); code != 200 ||
		len(parked.Parked) != 5 || orders.lastLimit != projection.DefaultParkedLimit {
		t.Fatalf("parked without a limit: %d %d events, limit %d", code, len(parked.Parked), orders.lastLimit)
	}
	req = httptest.NewRequest("GET", "/api/projections/carts/parked", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `"parked":[]`) {
		t.Errorf("no parked events: %q, want []", w.Body)
	}

	for _, limit := range []string{"0", "-1", "x", "1001", "1e3"} {
		wantError(t, h, "GET", "/api/projections/carts/parked?limit="+limit, 400, "limit")
	}
	wantError(t, h, "GET", "/api/projections/nope", 404, `no projection "nope"`)
	wantError(t, h, "GET", "/api/projections/nope/parked", 404, `no projection "nope"`)
	wantError(t, h, "GET", "/api/projections/carts/frobnicate", 404, "no such action")
	wantError(t, h, "GET", "/api/projections/carts/pause/again", 404, "no such endpoint")
	wantError(t, h, "GET", "/api/projections/"+strings.Repeat("x", projection.MaxNameBytes+1), 400, "name over")
	wantError(t, h, "POST", "/api/projections", 405, "use GET")
	wantError(t, h, "DELETE", "/api/projections/carts", 405, "use GET")
	wantError(t, h, "POST", "/api/projections/carts/parked", 405, "use GET")

	// A failing Status: 500 with the message; the list still answers.
	orders.mu.Lock()
	orders.statusErr = errors.New("target down")
	orders.mu.Unlock()
	wantError(t, h, "GET", "/api/projections/shop%2Forders", 500, "target down")
	if code := call(t, h, "GET", "/api/projections", &list); code != 200 || list.Projections[1].State.String() == "running" ||
		!strings.Contains(list.Projections[1].LastError, "target down") {
		t.Fatalf("list with one failing: %d %+v", code, list)
	}
}

func TestHandlerActions(t *testing.T) {
	var r projection.Registry
	f := newFake("orders")
	f.position = 4
	f.parked = make([]projection.ParkedEvent, 3)
	r.Add(f)
	h := r.Handler()

	post := func(action string) projection.ActionResult {
		t.Helper()
		var res projection.ActionResult
		if code := call(t, h, "POST", "/api/projections/orders/"+action, &res); code != 200 {
			t.Fatalf("%s: %d %+v", action, code, res)
		}
		return res
	}
	if res := post("pause"); res.State != projection.Paused || res.Name != "orders" || res.Replayed != nil {
		t.Errorf("pause: %+v", res)
	}
	if res := post("resume"); res.State != projection.Running {
		t.Errorf("resume: %+v", res)
	}
	if res := post("replay-parked"); res.Replayed == nil || *res.Replayed != 3 || res.Parked != 0 {
		t.Errorf("replay-parked: %+v", res)
	}
	if res := post("replay-parked"); res.Replayed == nil || *res.Replayed != 0 {
		t.Errorf("replay-parked again: %+v (the count is there when 0)", res)
	}
	if res := post("reset"); res.State != projection.Rebuilding || res.Position != 0 {
		t.Errorf("reset: %+v", res)
	}
	if res := post("rebuild"); res.State != projection.Rebuilding || f.rebuildsRun != 1 {
		t.Errorf("rebuild: %+v", res)
	}
	if got := f.calledWith(); got != "pause,resume,replay-parked,replay-parked,reset,rebuild" {
		t.Errorf("calls %s", got)
	}

	// Actions are POSTs only.
	wantError(t, h, "GET", "/api/projections/orders/reset", 405, "use POST")
	wantError(t, h, "POST", "/api/projections/nope/reset", 404, `no projection "nope"`)
	wantError(t, h, "POST", "/api/projections/orders/delete", 404, "no such action")

	// The state refuses: 409; anything else: 500 with the message.
	for _, tc := range []struct {
		set  func(error)
		path string
		err  error
		code int
	}{
		{func(err error) { f.resetErr = err }, "reset", projection.ErrNoReset, 409},
		{func(err error) { f.resetErr = err }, "reset", fmt.Errorf("wrapped: %w", projection.ErrStandby), 409},
		{func(err error) { f.rebuildErr = err }, "rebuild", projection.ErrNotRunning, 409},
		{func(err error) { f.rebuildErr = err }, "rebuild", projection.ErrRebuilding, 409},
		{func(err error) { f.rebuildErr = err }, "rebuild", projection.ErrRunning, 409},
		{func(err error) { f.replayErr = err }, "replay-parked", errors.New("disk on fire"), 500},
		{func(err error) { f.replayErr = err }, "replay-parked", context.DeadlineExceeded, 504},
	} {
		f.mu.Lock()
		tc.set(tc.err)
		f.mu.Unlock()
		wantError(t, h, "POST", "/api/projections/orders/"+tc.path, tc.code, tc.err.Error())
		f.mu.Lock()
		tc.set(nil)
		f.mu.Unlock()
	}
}

func TestHandlerBounds(t *testing.T) {
	var r projection.Registry
	f := newFake("orders")
	r.Add(f)
	h := r.Handler()

	// A small body is read and ignored; a big one refused.
	req := httptest.NewRequest("POST", "/api/projections/orders/pause", strings.NewReader("{}"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("a small body: %d %q", w.Code, w.Body)
	}
	req = httptest.NewRequest("POST", "/api/projections/orders/resume",
		strings.NewReader(strings.Repeat("x", projection.MaxRequestBodyBytes+1)))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("a big body: %d %q", w.Code, w.Body)
	}
	if got := f.calledWith(); got != "pause" {
		t.Errorf("calls %q: the refused request acted", got)
	}

	// A browser's cross-site POST is refused; the same origin's is not.
	req = httptest.NewRequest("POST", "/api/projections/orders/reset", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "cross-origin") {
		t.Fatalf("cross-site POST: %d %q", w.Code, w.Body)
	}
	req = httptest.NewRequest("POST", "/api/projections/orders/resume", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("same-origin POST: %d %q", w.Code, w.Body)
	}
	if got := f.calledWith(); got != "pause,resume" {
		t.Errorf("calls %q", got)
	}
}
