package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/console"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/persistent"
)

// api is the console's handler over a fresh embedded store with groups.
func api(t testing.TB) (http.Handler, annals.Store) {
	t.Helper()
	store := openStore(t)
	quiet := slog.New(slog.DiscardHandler)
	groups, err := persistent.Open(context.Background(), store, persistent.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { groups.Close() })
	return console.New(console.Options{Store: store, Groups: groups, Logger: quiet}), store
}

func call(h http.Handler, method, target, body string, header ...string) (int, map[string]any) {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	b, _ := io.ReadAll(rec.Body)
	json.Unmarshal(b, &out)
	return rec.Code, out
}

// openStore opens an embedded store that allows system streams, as annals
// serve's does (the persistent groups and the admin user live in them).
func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir(), embedded.Options{Limits: annals.Limits{AllowSystemStreams: true}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBadInput: every parameter is checked, with a clear message, and
// nothing changes.
func TestBadInput(t *testing.T) {
	h, store := api(t)
	store.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: "Placed", Data: []byte(`{}`)})
	for _, tc := range []struct {
		method, target, body string
		code                 int
		says                 string
	}{
		{"GET", "/console/api/stream?name=order-1&limit=0", "", 400, "limit"},
		{"GET", "/console/api/stream?name=order-1&limit=501", "", 400, "limit"},
		{"GET", "/console/api/stream?name=order-1&limit=ten", "", 400, "limit"},
		{"GET", "/console/api/stream?name=order-1&direction=sideways", "", 400, "direction"},
		{"GET", "/console/api/stream?name=order-1&from=-3", "", 400, "from"},
		{"GET", "/console/api/stream", "", 400, "name"},
		{"GET", "/console/api/stream?name=nope", "", 404, "not found"},
		{"GET", "/console/api/stream?name=" + strings.Repeat("x", 2000), "", 400, "invalid"},
		{"GET", "/console/api/event?stream=order-1&revision=x", "", 400, "revision"},
		{"GET", "/console/api/event?stream=order-1&revision=7", "", 404, "no event"},
		{"GET", "/console/api/all?prefix=a&type=b", "", 400, "one of"},
		{"GET", "/console/api/all?regex=(", "", 400, "regex"},
		{"GET", "/console/api/live?typeRegex=" + strings.Repeat("a", 1025), "", 400, "at most 1024"},
		{"GET", "/console/api/all?category=a&category=b", "", 400, "one category"},
		{"GET", "/console/api/all?regex=", "", 400, "empty regex"},
		{"GET", "/console/api/all?prefix=", "", 400, ""},
		{"GET", "/console/api/streams?limit=100000", "", 400, "limit"},
		{"GET", "/console/api/metadata", "", 400, "stream"},
		{"POST", "/console/api/subscriptions", `{"stream":"order-1"}`, 400, "group"},
		{"POST", "/console/api/subscriptions", `not json`, 400, "body"},
		{"POST", "/console/api/subscriptions", `{"stream":"order-1","group":"g","settings":{"bogus":1}}`, 400, "bogus"},
		{"POST", "/console/api/subscriptions", `{"stream":"order-1","group":"g","settings":{"maxRetryCount":-5}}`, 400, ""},
		{"POST", "/console/api/subscriptions", `{"stream":"order-1","group":"g","x":"` + strings.Repeat("y", console.MaxRequestBodyBytes) + `"}`, 400, "body"},
		{"DELETE", "/console/api/subscriptions?stream=order-1&group=none", "", 404, "does not exist"},
		{"GET", "/console/api/nothing", "", 404, "no such"},
	} {
		code, body := call(h, tc.method, tc.target, tc.body)
		msg, _ := body["error"].(string)
		if code != tc.code || !strings.Contains(msg, tc.says) || msg == "" {
			t.Errorf("%s %.80s: %d %q, want %d saying %q", tc.method, tc.target, code, msg, tc.code, tc.says)
		}
	}
	if code, body := call(h, "GET", "/console/api/subscriptions", ""); code != 200 || len(body["groups"].([]any)) != 0 {
		t.Errorf("bad requests created a group: %d %v", code, body)
	}
}

// TestCrossOrigin: a write from a page elsewhere is refused.
func TestCrossOrigin(t *testing.T) {
	h, _ := api(t)
	code, body := call(h, "POST", "/console/api/subscriptions", `{"stream":"s","group":"g"}`,
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if code != http.StatusForbidden {
		t.Errorf("a cross-site POST: %d %v, want 403", code, body)
	}
	if code, body := call(h, "GET", "/console/api/subscriptions", ""); len(body["groups"].([]any)) != 0 || code != 200 {
		t.Errorf("the refused POST created a group: %v", body)
	}
}

// TestPaging: a stream read in pages, either way, gives every event once.
func TestPaging(t *testing.T) {
	h, store := api(t)
	for i := range 23 {
		store.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: "Placed", Data: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	for _, dir := range []string{"forwards", "backwards"} {
		seen, from := 0, ""
		for page := 0; ; page++ {
			code, body := call(h, "GET", "/console/api/stream?name=order-1&limit=5&direction="+dir+from, "")
			if code != 200 || page > 10 {
				t.Fatalf("%s page %d: %d %v", dir, page, code, body)
			}
			seen += len(body["events"].([]any))
			next, ok := body["next"].(float64)
			if !ok {
				break
			}
			from = fmt.Sprintf("&from=%d", int(next))
		}
		if seen != 23 {
			t.Errorf("%s: %d events over the pages, want 23", dir, seen)
		}
	}
}

// BenchmarkStreamPage opens the last page of a stream of a million events,
// as the console does: its cost must not grow with the stream.
func BenchmarkStreamPage(b *testing.B) {
	h, store := api(b)
	const total, batch = 1_000_000, 1000
	events := make([]annals.EventData, batch)
	for i := range events {
		events[i] = annals.EventData{Type: "Tick", Data: []byte(`{"n":1}`)}
	}
	for range total / batch {
		if _, err := store.Append(context.Background(), "big", annals.Any, events...); err != nil {
			b.Fatal(err)
		}
	}
	for _, target := range []string{"/console/api/stream?name=big&direction=backwards", "/console/api/stream?name=big&from=500000"} {
		b.Run(strings.SplitN(target, "&", 2)[1], func(b *testing.B) {
			for b.Loop() {
				if code, _ := call(h, "GET", target, ""); code != 200 {
					b.Fatal(code)
				}
			}
		})
	}
}

// BenchmarkAppendWithConsole appends single 200-byte events from 64
// writers, with the console's live pages open or not: a live tail of $all
// and, every second, the dashboard's and a stream page's requests (the
// pages poll every 3 to 5 s).
func BenchmarkAppendWithConsole(b *testing.B) {
	for _, live := range []bool{false, true} {
		b.Run(fmt.Sprintf("live=%v/writers=64", live), func(b *testing.B) {
			h, store := api(b)
			if live {
				stop := watchConsole(b, h)
				defer stop()
			}
			appendFrom(b, store, 64)
		})
	}
}

// watchConsole keeps a live tail open on h and polls it as the pages do.
func watchConsole(b *testing.B, h http.Handler) (stop func()) {
	srv := httptest.NewServer(h)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/console/api/live", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	go func() {
		for ctx.Err() == nil {
			for _, path := range []string{"/console/api/dashboard", "/console/api/info", "/console/api/stream?name=bench-0&direction=backwards"} {
				if resp, err := http.Get(srv.URL + path); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return func() { cancel(); srv.Close() }
}

// appendFrom splits b.N single-event appends over writers, each on its
// own stream, and reports events/s.
func appendFrom(b *testing.B, store annals.Store, writers int) {
	event := annals.EventData{Type: "BenchEvent", Data: make([]byte, 200)}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("bench-%d", w)
			for next.Add(1) <= int64(b.N) {
				if _, err := store.Append(context.Background(), stream, annals.Any, event); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// TestAllFilters: a page of $all takes the server's filters: stream and
// event type prefixes, expressions, and a category.
func TestAllFilters(t *testing.T) {
	h, store := api(t)
	for _, e := range []struct{ stream, typ string }{{"order-1", "Placed"}, {"order-2", "Paid"}, {"cart-1", "Added"}, {"orders", "Placed"}} {
		if _, err := store.Append(context.Background(), e.stream, annals.Any, annals.EventData{Type: e.typ, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ query, want string }{
		{"prefix=order-", "order-1/Placed order-2/Paid"},
		{"prefix=cart&prefix=orders", "cart-1/Added orders/Placed"},
		{"type=Pa", "order-2/Paid"},
		{"regex=" + url.QueryEscape(`^(cart|orders)`), "cart-1/Added orders/Placed"},
		{"typeRegex=" + url.QueryEscape(`ed$`), "order-1/Placed cart-1/Added orders/Placed"},
		{"category=order", "order-1/Placed order-2/Paid"},
	} {
		code, body := call(h, "GET", "/console/api/all?"+tc.query, "")
		var got []string
		events, _ := body["events"].([]any)
		for _, e := range events {
			if e := e.(map[string]any); !strings.HasPrefix(e["stream"].(string), "$") {
				got = append(got, e["stream"].(string)+"/"+e["type"].(string))
			}
		}
		if code != 200 || strings.Join(got, " ") != tc.want {
			t.Errorf("%s: %d %v, want %s", tc.query, code, got, tc.want)
		}
	}
}
