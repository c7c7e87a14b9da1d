package process_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/process"
)

func get(t *testing.T, h http.Handler, method, target, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// TestHTTP: the JSON API lists the managers, reports on one and on an
// instance, and queues retries and abandons, refusing bad requests.
func TestHTTP(t *testing.T) {
	for _, kind := range teststores.Kinds {
		t.Run(kind, func(t *testing.T) { testHTTP(t, kind) })
	}
}

func testHTTP(t *testing.T, kind string) {
	s := teststores.Open(t, kind)
	h := boxHandler(s)
	fill(t, h, []string{"box-a", "box-bad"})
	var sent atomic.Int64
	stop, errs := start(t, purgeManager(process.Policy{InFlight: 1}), s, routes(h, &sent))
	request(t, s, "x", []string{"box-a", "box-bad"})
	finished(t, s, "x", errs)
	stop()
	// Streams that are not a manager's, and a second manager, around it.
	for _, name := range []string{"process.weird!", "process.purge_2", "process.a"} {
		s.Append(context.Background(), name, annals.Any, annals.EventData{Type: "process.Checkpoint", Data: []byte(`{"kind":"Checkpoint","position":1}`)})
	}
	api := process.Handler(s)
	code, body := get(t, api, "GET", "/api/processes", "")
	if _, ok := s.(annals.StreamLister); !ok {
		if code != 400 || !strings.Contains(body["error"].(string), "cannot list") {
			t.Fatalf("listing on a store that cannot list: %d %v", code, body)
		}
		return
	}
	var names []string
	for _, m := range body["managers"].([]any) {
		names = append(names, m.(map[string]any)["manager"].(string))
	}
	if code != 200 || strings.Join(names, " ") != "a purge purge_2" {
		t.Fatalf("listing: %d %v", code, names)
	}
	if code, body := get(t, api, "GET", "/api/processes/purge", ""); code != 200 || len(body["failed"].([]any)) != 1 {
		t.Fatalf("report: %d %v", code, body)
	}
	if code, body := get(t, api, "GET", "/api/processes/purge/x", ""); code != 200 || body["instance"].(map[string]any)["status"] != "failed" || len(body["history"].([]any)) == 0 {
		t.Fatalf("instance: %d %v", code, body)
	}
	for _, tc := range []struct {
		method, target, body string
		code                 int
		says                 string
	}{
		{"GET", "/api/processes/nope", "", 404, "no manager"},
		{"GET", "/api/processes/purge/nope", "", 404, "no such instance"},
		{"POST", "/api/processes/purge/nope/retry", "", 404, "no such instance"},
		{"POST", "/api/processes/purge/x/explode", "", 400, "no action"},
		{"POST", "/api/processes/purge/x/abandon", "not json", 400, "reason"},
		{"POST", "/api/processes/purge/x/retry", "", 202, ""},
		{"POST", "/api/processes/purge/x/abandon", `{"reason":"enough"}`, 202, ""},
		{"DELETE", "/api/processes/purge/x", "", 405, ""},
	} {
		code, body := get(t, api, tc.method, tc.target, tc.body)
		if msg, _ := body["error"].(string); code != tc.code || !strings.Contains(msg, tc.says) {
			t.Errorf("%s %s: %d %q, want %d saying %q", tc.method, tc.target, code, msg, tc.code, tc.says)
		}
	}
	if got := teststores.Types(t, s, "process.purge.control"); got != "process.Retry process.Abandon" {
		t.Errorf("the control stream: %s", got)
	}
}

// TestBadCorrelation: an event naming an instance no stream can be named
// by is left alone, and the run goes on.
func TestBadCorrelation(t *testing.T) {
	s := memory.New(memory.Options{})
	h := boxHandler(s)
	fill(t, h, []string{"box-a"})
	var sent atomic.Int64
	stop, errs := start(t, purgeManager(process.Policy{}), s, routes(h, &sent))
	defer stop()
	request(t, s, "bad\x00id", []string{"box-a"})
	request(t, s, "good", []string{"box-a"})
	finished(t, s, "good", errs)
}
