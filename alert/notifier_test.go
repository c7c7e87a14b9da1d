package alert

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// fast are options whose pauses are short enough for tests.
func fast(urls ...string) Options {
	return Options{URLs: urls, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Logger: quiet}
}

func newNotifier(t *testing.T, opts Options) *Notifier {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// waitFor polls cond: deliveries finish in the background.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func waitDeliveries(t *testing.T, n *Notifier, count int) []Delivery {
	t.Helper()
	waitFor(t, "deliveries", func() bool { return len(n.Deliveries()) >= count })
	return n.Deliveries()
}

// hanging is a receiver that answers nothing until the test ends; got
// receives a value as each request arrives.
func hanging(t *testing.T) (srv *httptest.Server, got chan struct{}) {
	got = make(chan struct{}, 100)
	release := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handlers
	return srv, got
}

var lagAlert = Alert{Kind: ProjectionLag, Subject: "orders", Message: `projection "orders" is 20000 events behind`,
	At:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	Details: Details{Position: new(uint64(0)), Lag: new(uint64(20_000)), Threshold: new(uint64(10_000))}}

func TestNotifierBody(t *testing.T) {
	bodies := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Error(err)
		}
		bodies <- body
	}))
	defer srv.Close()
	n := newNotifier(t, fast(srv.URL+"/hooks/s3cret?token=s3cret"))
	local := lagAlert
	local.At = lagAlert.At.In(time.FixedZone("X", -7200))
	n.Notify(local)

	body := <-bodies
	at, err := time.Parse(time.RFC3339, body["at"].(string))
	if err != nil || !at.Equal(lagAlert.At) || !strings.HasSuffix(body["at"].(string), "Z") {
		t.Errorf("at = %v (%v), want %v in UTC", body["at"], err, lagAlert.At)
	}
	details, _ := body["details"].(map[string]any)
	if body["version"] != 1.0 || body["kind"] != "projection_lag" || body["subject"] != "orders" ||
		body["message"] != lagAlert.Message || details["lag"] != 20_000.0 || details["threshold"] != 10_000.0 ||
		details["position"] != 0.0 || len(details) != 3 {
		t.Errorf("body %v", body)
	}
	d := waitDeliveries(t, n, 1)[0]
	if !d.OK || d.Attempts != 1 || d.Status != 200 || d.Err != "" || d.At.IsZero() || d.Alert.Subject != "orders" {
		t.Errorf("delivery %+v", d)
	}
	if d.URL != srv.URL+"/…" {
		t.Errorf("delivery URL %q, want the scheme and host only", d.URL)
	}
}

// TestNotifierRetries answers each attempt with the next status of the
// case (the last one repeated).
func TestNotifierRetries(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int
		attempts int
		ok       bool
	}{
		{"503 then 200", []int{503, 503, 200}, 3, true},
		{"408 and 429 are retried", []int{408, 429, 204}, 3, true},
		{"400 is not retried", []int{400, 200}, 1, false},
		{"404 is not retried", []int{404, 200}, 1, false},
		{"a redirect is not followed", []int{302, 200}, 1, false},
		{"500 until out of attempts", []int{500}, 4, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(hits.Add(1)) - 1
				status := c.statuses[min(i, len(c.statuses)-1)]
				if status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(status)
				w.Write([]byte("  answer " + strings.Repeat("x", 2*MaxResponseBytes)))
			}))
			defer srv.Close()
			opts := fast(srv.URL)
			opts.MaxAttempts = 4
			n := newNotifier(t, opts)
			n.Notify(lagAlert)
			d := waitDeliveries(t, n, 1)[0]
			last := c.statuses[min(c.attempts, len(c.statuses))-1]
			if d.Attempts != c.attempts || d.OK != c.ok || d.Status != last || int(hits.Load()) != c.attempts {
				t.Errorf("delivery %+v after %d requests; want %d attempts, ok %v, status %d",
					d, hits.Load(), c.attempts, c.ok, last)
			}
			quote := fmt.Sprintf("%d %s: answer x", last, http.StatusText(last))
			if !c.ok && (!strings.HasPrefix(d.Err, quote) || len(d.Err) > len(quote)+MaxErrorQuoteBytes) {
				t.Errorf("Err %q: want the status and a short quote of the answer", d.Err)
			}
		})
	}
}

func TestNotifierNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/s3cret"
	srv.Close() // nothing listens there any more
	opts := fast(url)
	opts.MaxAttempts = 3
	n := newNotifier(t, opts)
	n.Notify(lagAlert)
	d := waitDeliveries(t, n, 1)[0]
	if d.OK || d.Attempts != 3 || d.Status != 0 || d.Err == "" || strings.Contains(d.Err, "s3cret") {
		t.Errorf("delivery %+v: want 3 failed attempts, an error that does not quote the URL", d)
	}
}

func TestNotifierTimeout(t *testing.T) {
	srv, _ := hanging(t)
	opts := fast(srv.URL)
	opts.MaxAttempts, opts.Timeout = 2, 20*time.Millisecond
	n := newNotifier(t, opts)
	n.Notify(lagAlert)
	d := waitDeliveries(t, n, 1)[0]
	if d.OK || d.Attempts != 2 || d.Err != "no answer within 20ms" {
		t.Errorf("delivery %+v", d)
	}
}

// TestNotifyNeverBlocks: with the worker stuck on a receiver that does
// not answer, Notify fills the queue and then drops, and Close gives up
// the stuck POST and drops what was queued.
func TestNotifyNeverBlocks(t *testing.T) {
	srv, got := hanging(t)
	opts := fast(srv.URL)
	opts.QueueLength, opts.Timeout = 2, time.Hour
	n := newNotifier(t, opts)
	n.Notify(lagAlert)
	<-got // the worker holds the first alert; the queue is empty

	done := make(chan struct{})
	go func() {
		for range 10 {
			n.Notify(lagAlert)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked")
	}
	if d := n.Dropped(); d != 8 {
		t.Fatalf("Dropped = %d, want 8 (10 alerts, 2 queued)", d)
	}

	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(CloseTimeout + 5*time.Second):
		t.Fatal("Close did not return within its bound")
	}
	if d := n.Dropped(); d != 10 {
		t.Errorf("Dropped = %d after Close, want 10 (the 2 queued too)", d)
	}
	ds := n.Deliveries()
	if len(ds) != 1 || ds[0].OK || !strings.HasPrefix(ds[0].Err, "stopped by Close") {
		t.Errorf("deliveries %+v: want the cancelled one", ds)
	}
	n.Notify(lagAlert)
	if d := n.Dropped(); d != 11 {
		t.Errorf("Dropped = %d after a Notify on a closed notifier, want 11", d)
	}
}

// stuck is a transport that ignores cancellation.
type stuck chan struct{}

func (s stuck) RoundTrip(*http.Request) (*http.Response, error) {
	<-s
	return nil, http.ErrHandlerTimeout
}

func TestCloseIsBounded(t *testing.T) {
	release := make(stuck)
	defer close(release)
	opts := fast("http://receiver.invalid/")
	opts.Client = &http.Client{Transport: release}
	n := newNotifier(t, opts)
	n.closeWait = 20 * time.Millisecond
	n.Notify(lagAlert)
	waitFor(t, "the worker to take the alert", func() bool { return len(n.hooks[0].queue) == 0 })
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a worker stuck in its transport")
	}
}

// TestSlowWebhookDelaysOnlyItself: one receiver hangs, the other gets
// every alert.
func TestSlowWebhookDelaysOnlyItself(t *testing.T) {
	slow, _ := hanging(t)
	var hits atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer ok.Close()
	opts := fast(slow.URL, ok.URL)
	opts.Timeout = time.Hour
	n := newNotifier(t, opts)
	for range 3 {
		n.Notify(lagAlert)
	}
	waitFor(t, "the healthy receiver", func() bool { return hits.Load() == 3 })
}

func TestDeliveriesNewestFirst(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	opts := fast(srv.URL)
	opts.MaxDeliveries = 3
	n := newNotifier(t, opts)
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		a := lagAlert
		a.Subject = s
		n.Notify(a)
	}
	waitFor(t, "the last delivery", func() bool { ds := n.Deliveries(); return len(ds) > 0 && ds[0].Alert.Subject == "e" })
	var got []string
	for _, d := range n.Deliveries() {
		got = append(got, d.Alert.Subject)
	}
	if strings.Join(got, "") != "edc" {
		t.Errorf("deliveries %q, want e d c", got)
	}
}

func TestNewChecksURLs(t *testing.T) {
	for _, raw := range []string{"ftp://host/s3cret", "http://", "https:///s3cret", "hooks.example.com/s3cret",
		"mailto:s3cret@example.com", "http://[::1/s3cret", "http://:80/s3cret"} {
		_, err := New(Options{URLs: []string{"https://fine.example.com/", raw}, Logger: quiet})
		if err == nil {
			t.Errorf("New accepted %q", raw)
		} else if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "#2") {
			t.Errorf("%q: error %q should name the URL by its place, not quote it", raw, err)
		}
	}
	n, err := New(Options{URLs: []string{"https://hooks.example.com/services/s3cret", "HTTP://Example.com:8080"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.hooks[0].shown != "https://hooks.example.com/…" || n.hooks[1].shown != "http://Example.com:8080" {
		t.Errorf("shown as %q, %q", n.hooks[0].shown, n.hooks[1].shown)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{QueueLength: MaxQueueLength + 1, MaxAttempts: -1, InitialBackoff: time.Hour}.withDefaults()
	if o.QueueLength != MaxQueueLength || o.MaxAttempts != DefaultMaxAttempts || o.MaxBackoff != DefaultMaxBackoff ||
		o.InitialBackoff != DefaultMaxBackoff || o.Timeout != DefaultTimeout || o.MaxDeliveries != DefaultMaxDeliveries ||
		o.Client == nil || o.Logger == nil {
		t.Errorf("%+v", o)
	}
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for i := 1; i <= 8; i++ {
		got = append(got, backoff(i, time.Second, time.Minute))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoffs %v, want %v seconds", got, want)
		}
	}
	if d := backoff(100, time.Second, 1<<62); d != 1<<62 {
		t.Errorf("backoff under a huge limit = %v, want the limit (no overflow)", d)
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, " 7 ": 7 * time.Second, "-1": 0,
		"Wed, 21 Oct 2026 07:28:00 GMT": 0, "99999999999999999": time.Minute, "120": time.Minute} {
		h := http.Header{}
		h.Set("Retry-After", v)
		if got := retryAfter(h, time.Minute); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}
