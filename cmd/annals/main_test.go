package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
)

// cli runs commands in-process against one store directory.
type cli struct {
	t  *testing.T
	db string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, db: t.TempDir()}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs `annals args... --db DIR` with stdin.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--db", c.db)
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// ok runs a command that must succeed quietly, and returns its JSON lines.
func (c *cli) ok(stdin string, args ...string) []map[string]any {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 || r.stderr != "" {
		c.t.Fatalf("annals %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return jsonLines(c.t, r.stdout)
}

// fails runs a command that must fail with code, saying every one of want
// on stderr and nothing on stdout.
func (c *cli) fails(code int, want []string, stdin string, args ...string) {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != code {
		c.t.Fatalf("annals %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), r.code, code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			c.t.Errorf("annals %s: stderr %q does not say %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	if r.stdout != "" {
		c.t.Errorf("annals %s: stdout %q, want nothing", strings.Join(args, " "), r.stdout)
	}
}

// jsonLines parses stdout, which must be JSON objects, one a line.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if s == "" {
		return out
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("output does not end with a newline: %q", s)
	}
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("output line %d is not a JSON object: %v: %q", i+1, err, line)
		}
		out = append(out, m)
	}
	return out
}

// compact re-encodes a JSON value of a parsed line, to compare it.
func compact(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func num(t *testing.T, m map[string]any, key string) uint64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%q is %#v in %v, want a number", key, m[key], m)
	}
	var v uint64
	if _, err := fmt.Sscan(n.String(), &v); err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	return v
}

func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q is %#v in %v, want a string", key, m[key], m)
	}
	return s
}

func checkAppend(t *testing.T, lines []map[string]any, stream string, next, first, last uint64) {
	t.Helper()
	if len(lines) != 1 {
		t.Fatalf("append printed %d lines, want 1: %v", len(lines), lines)
	}
	l := lines[0]
	if str(t, l, "stream") != stream || num(t, l, "nextExpectedRevision") != next ||
		num(t, l, "firstPosition") != first || num(t, l, "lastPosition") != last || len(l) != 4 {
		t.Fatalf("append printed %v, want stream %s, next %d, positions %d..%d", l, stream, next, first, last)
	}
}

// checkEvents checks the stream, revision and position of event lines.
func checkEvents(t *testing.T, lines []map[string]any, want ...string) {
	t.Helper()
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s@%d#%d", str(t, l, "stream"), num(t, l, "revision"), num(t, l, "position")))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestAppendSingle(t *testing.T) {
	c := newCLI(t)
	checkAppend(t, c.ok("", "append", "--stream", "order-1", "--expected", "no-stream", "--type", "Created", "--data", `{"seats": 5}`),
		"order-1", 0, 1, 1)

	id := uuid.New()
	checkAppend(t, c.ok("", "append", "--stream", "order-1", "--expected", "0", "--type", "Paid",
		"--id", id.String(), "--metadata", `{"by":"me"}`), "order-1", 1, 2, 2)
	// The same id at the same place is a retry: the original result, nothing written.
	checkAppend(t, c.ok("", "append", "--stream", "order-1", "--expected", "0", "--type", "Paid",
		"--id", id.String(), "--metadata", `{"by":"me"}`), "order-1", 1, 2, 2)

	events := c.ok("", "read", "--stream", "order-1")
	checkEvents(t, events, "order-1@0#1", "order-1@1#2")
	first, second := events[0], events[1]
	if str(t, first, "type") != "Created" || str(t, first, "contentType") != annals.ContentTypeJSON ||
		compact(t, first["data"]) != `{"seats":5}` {
		t.Errorf("first event %v", first)
	}
	if _, ok := first["metadata"]; ok {
		t.Errorf("first event has metadata: %v", first)
	}
	if _, err := uuid.Parse(str(t, first, "id")); err != nil {
		t.Errorf("first event id: %v", err)
	}
	if rec, err := time.Parse(time.RFC3339Nano, str(t, first, "recorded")); err != nil || time.Since(rec) > time.Hour {
		t.Errorf("first event recorded %q: %v", first["recorded"], err)
	}
	if str(t, second, "id") != id.String() || compact(t, second["data"]) != `{}` ||
		compact(t, second["metadata"]) != `{"by":"me"}` {
		t.Errorf("second event %v", second)
	}
}

func TestAppendStdinIsOneAtomicAppend(t *testing.T) {
	c := newCLI(t)
	id := uuid.New()
	input := `{"type":"Booked","data":{"seat":1}}

{"type":"Booked","data":{"seat":2},"metadata":{"corr":"x"},"id":"` + id.String() + `"}
{"type":"Noted","data":"just a string"}
`
	checkAppend(t, c.ok(input, "append", "--stream", "order-1", "--expected", "no-stream", "--stdin"), "order-1", 2, 1, 3)
	events := c.ok("", "read", "--stream", "order-1")
	checkEvents(t, events, "order-1@0#1", "order-1@1#2", "order-1@2#3")
	if compact(t, events[0]["data"]) != `{"seat":1}` || str(t, events[1], "id") != id.String() ||
		compact(t, events[1]["metadata"]) != `{"corr":"x"}` || compact(t, events[2]["data"]) != `"just a string"` ||
		str(t, events[2], "type") != "Noted" {
		t.Errorf("events %v", events)
	}
	// All the events of one append are recorded at the same instant.
	if events[0]["recorded"] != events[2]["recorded"] {
		t.Errorf("recorded %v and %v", events[0]["recorded"], events[2]["recorded"])
	}

	// A batch the store rejects in part is not written at all: the second
	// event's type hides a right-to-left override.
	c.fails(1, []string{"event[1].type", "disguise"},
		`{"type":"Fine"}`+"\n"+`{"type":"Bad\u202Etype"}`+"\n", "append", "--stream", "order-1", "--stdin")
	// Nor is a batch with a bad line, nor one with a wrong expectation.
	c.fails(2, []string{"stdin line 2", "not a JSON object"}, `{"type":"Fine"}`+"\nnope\n", "append", "--stream", "order-1", "--stdin")
	c.fails(1, []string{"wrong expected revision"}, `{"type":"Fine"}`+"\n", "append", "--stream", "order-1", "--expected", "1", "--stdin")
	checkEvents(t, c.ok("", "read-all"), "order-1@0#1", "order-1@1#2", "order-1@2#3")
}

func TestWrongExpectedRevision(t *testing.T) {
	c := newCLI(t)
	c.ok("", "append", "--stream", "order-1", "--expected", "no-stream", "--type", "Created")
	c.fails(1, []string{`wrong expected revision on stream "order-1"`, "expected no-stream", "actual 0"},
		"", "append", "--stream", "order-1", "--expected", "no-stream", "--type", "Created")
	c.fails(1, []string{`stream "order-1"`, "expected 5", "actual 0"},
		"", "append", "--stream", "order-1", "--expected", "5", "--type", "Paid")
	c.fails(1, []string{`stream "order-2"`, "expected exists", "actual no-stream"},
		"", "append", "--stream", "order-2", "--expected", "exists", "--type", "Paid")
	checkEvents(t, c.ok("", "read-all"), "order-1@0#1")
}

func TestRead(t *testing.T) {
	c := newCLI(t)
	c.ok("", "append", "--stream", "other", "--type", "T")
	expected := "no-stream"
	for i := range 5 {
		checkAppend(t, c.ok("", "append", "--stream", "s", "--expected", expected, "--type", "T"), "s", uint64(i), uint64(i+2), uint64(i+2))
		expected = fmt.Sprint(i)
	}
	all := []string{"s@0#2", "s@1#3", "s@2#4", "s@3#5", "s@4#6"}
	checkEvents(t, c.ok("", "read", "--stream", "s"), all...)
	checkEvents(t, c.ok("", "read", "--stream", "s", "--backwards"), "s@4#6", "s@3#5", "s@2#4", "s@1#3", "s@0#2")
	checkEvents(t, c.ok("", "read", "--stream", "s", "--limit", "2"), "s@0#2", "s@1#3")
	checkEvents(t, c.ok("", "read", "--stream", "s", "--from", "3"), "s@3#5", "s@4#6")
	checkEvents(t, c.ok("", "read", "--stream", "s", "--from", "end"))
	checkEvents(t, c.ok("", "read", "--stream", "s", "--from", "start", "--limit", "1"), "s@0#2")
	checkEvents(t, c.ok("", "read", "--stream", "s", "--backwards", "--from", "1"), "s@1#3", "s@0#2")
	checkEvents(t, c.ok("", "read", "--stream", "s", "--backwards", "--limit", "1"), "s@4#6")
	c.fails(1, []string{"stream not found", `"missing"`}, "", "read", "--stream", "missing")
}

func TestReadAllFilters(t *testing.T) {
	c := newCLI(t)
	for _, s := range []string{"order-1", "invoice-1", "order-2", "orders-1"} {
		c.ok("", "append", "--stream", s, "--type", "Created"+s[:1])
	}
	c.ok("", "append", "--stream", "order-1", "--type", "Paid")
	checkEvents(t, c.ok("", "read-all"), "order-1@0#1", "invoice-1@0#2", "order-2@0#3", "orders-1@0#4", "order-1@1#5")
	checkEvents(t, c.ok("", "read-all", "--backwards", "--limit", "2"), "order-1@1#5", "orders-1@0#4")
	checkEvents(t, c.ok("", "read-all", "--from", "3", "--limit", "1"), "order-2@0#3")
	checkEvents(t, c.ok("", "read-all", "--stream-prefix", "order-"), "order-1@0#1", "order-2@0#3", "order-1@1#5")
	checkEvents(t, c.ok("", "read-all", "--stream-prefix", "order-2", "--stream-prefix", "invoice-"), "invoice-1@0#2", "order-2@0#3")
	checkEvents(t, c.ok("", "read-all", "--category", "order"), "order-1@0#1", "order-2@0#3", "order-1@1#5")
	checkEvents(t, c.ok("", "read-all", "--type-prefix", "Paid"), "order-1@1#5")
	checkEvents(t, c.ok("", "read-all", "--stream-regex", `^orders?-1$`), "order-1@0#1", "orders-1@0#4", "order-1@1#5")
	checkEvents(t, c.ok("", "read-all", "--type-regex", `^Created[io]$`), "order-1@0#1", "invoice-1@0#2", "order-2@0#3", "orders-1@0#4")
	checkEvents(t, c.ok("", "read-all", "--exclude-system", "--backwards", "--limit", "1"), "order-1@1#5")
	checkEvents(t, c.ok("", "read-all", "--category", "order", "--backwards", "--limit", "1", "--from", "4"), "order-2@0#3")

	c.fails(2, []string{"at most one filter", "--stream-prefix", "--category"}, "", "read-all", "--category", "order", "--stream-prefix", "x")
	c.fails(2, []string{"--stream-regex", "missing closing )"}, "", "read-all", "--stream-regex", "(")
}

// syncBuffer is a bytes.Buffer for one writer goroutine and one reader.
type syncBuffer = teststores.SyncBuffer

// subscribe starts `annals subscribe args...` and waits until it has
// printed n lines, the last {"caughtUp":...}: it writes each message as it
// comes, not at exit. It returns the lines and a stop function that cancels
// the command (as SIGINT does) and checks that it exits 0, quietly.
func (c *cli) subscribe(n int, args ...string) ([]map[string]any, func()) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	args = append(append([]string{"subscribe"}, args...), "--db", c.db)
	go func() { done <- run(ctx, args, strings.NewReader(""), &stdout, &stderr) }()

	deadline := time.Now().Add(hangGuard)
	for strings.Count(stdout.String(), "\n") < n {
		select {
		case code := <-done:
			cancel()
			c.t.Fatalf("annals %s exited %d before catching up: stdout %q, stderr %q", strings.Join(args, " "), code, stdout.String(), stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			c.t.Fatalf("annals %s: no %d lines after %v: stdout %q, stderr %q", strings.Join(args, " "), n, hangGuard, stdout.String(), stderr.String())
		}
	}
	lines := jsonLines(c.t, stdout.String())
	if len(lines) != n || lines[n-1]["caughtUp"] != true {
		cancel()
		c.t.Fatalf("annals %s printed %v, want %d lines ending with caughtUp", strings.Join(args, " "), lines, n)
	}
	stop := func() {
		c.t.Helper()
		cancel()
		select {
		case code := <-done:
			if code != 0 || stderr.String() != "" {
				c.t.Fatalf("subscribe exited %d on cancel, stderr %q; want 0 and nothing", code, stderr.String())
			}
		case <-time.After(hangGuard):
			c.t.Fatalf("subscribe did not exit within %v of its cancellation", hangGuard)
		}
		if more := jsonLines(c.t, stdout.String()); len(more) != n {
			c.t.Fatalf("subscribe printed %v after catching up, want nothing", more[n:])
		}
	}
	return lines, stop
}

func TestSubscribe(t *testing.T) {
	c := newCLI(t)
	c.ok(`{"type":"A"}`+"\n"+`{"type":"B"}`+"\n", "append", "--stream", "order-1", "--stdin")
	c.ok("", "append", "--stream", "invoice-1", "--type", "C")
	c.ok("", "append", "--stream", "order-2", "--type", "D")

	lines, stop := c.subscribe(5)
	checkEvents(t, lines[:4], "order-1@0#1", "order-1@1#2", "invoice-1@0#3", "order-2@0#4")
	if num(t, lines[4], "position") != 4 || len(lines[4]) != 2 {
		t.Errorf("caught up line %v", lines[4])
	}
	// While the subscription holds the store, no other command can open it.
	c.fails(1, []string{"in use"}, "", "read-all")
	stop()
	c.ok("", "read-all", "--limit", "1") // closed cleanly: the store opens again

	// A filtered subscription checkpoints the events it passes over.
	lines, stop = c.subscribe(3, "--category", "invoice")
	checkEvents(t, lines[:1], "invoice-1@0#3")
	if num(t, lines[1], "checkpoint") != 4 || len(lines[1]) != 1 || num(t, lines[2], "position") != 4 {
		t.Errorf("after the event: %v", lines[1:])
	}
	stop()

	lines, stop = c.subscribe(2, "--stream", "order-1", "--from", "1")
	checkEvents(t, lines[:1], "order-1@1#2")
	stop()

	lines, stop = c.subscribe(1, "--from", "end")
	if num(t, lines[0], "position") != 4 {
		t.Errorf("caught up line %v", lines[0])
	}
	stop()

	c.fails(2, []string{"--category", "does not go with --stream"}, "", "subscribe", "--stream", "order-1", "--category", "order")
}

func TestBinaryPayloads(t *testing.T) {
	c := newCLI(t)
	s, err := embedded.Open(c.db, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(context.Background(), "blobs", annals.NoStream,
		annals.EventData{Type: "Blob", ContentType: annals.ContentTypeBinary, Data: []byte{0, 1, 0xff}, Metadata: []byte("not json")},
		annals.EventData{Type: "Number", ContentType: annals.ContentTypeBinary, Data: []byte("42")},
		annals.EventData{Type: "Charset", ContentType: "application/json; charset=utf-8", Data: []byte(`{"a": "<b>"}`), Metadata: []byte(`[1]`)},
		annals.EventData{Type: "Broken", ContentType: annals.ContentTypeJSON, Data: []byte(`{"a":`)},
		annals.EventData{Type: "Empty"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	events := c.ok("", "read", "--stream", "blobs")
	want := []map[string]string{
		{"dataBase64": b64([]byte{0, 1, 0xff}), "metadataBase64": b64([]byte("not json"))},
		{"dataBase64": b64([]byte("42"))},
		{"data": `{"a":"<b>"}`, "metadata": `[1]`},
		{"dataBase64": b64([]byte(`{"a":`))},
		{},
	}
	for i, e := range events {
		for _, key := range []string{"data", "dataBase64", "metadata", "metadataBase64"} {
			got, ok := e[key]
			w, want := want[i][key]
			switch {
			case ok != want:
				t.Errorf("event %d (%s): has %s: %v, want %v", i, e["type"], key, ok, want)
			case !ok:
			case key == "data" || key == "metadata":
				if compact(t, got) != w {
					t.Errorf("event %d: %s %s, want %s", i, key, compact(t, got), w)
				}
			case got != w:
				t.Errorf("event %d: %s %v, want %s", i, key, got, w)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	c := newCLI(t)
	// No store yet: reads do not create one.
	c.fails(1, []string{"no store in", c.db}, "", "read", "--stream", "s")
	c.fails(1, []string{"no store in"}, "", "read-all")
	c.fails(1, []string{"no store in"}, "", "subscribe")

	for _, tc := range []struct {
		stdin string
		args  []string
		want  []string
	}{
		{"", []string{"append", "--type", "T"}, []string{"--stream is required"}},
		{"", []string{"append", "--stream", "", "--type", "T"}, []string{"--stream is required"}},
		{"", []string{"append", "--stream", "s"}, []string{"--type is required"}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--expected", "maybe"}, []string{`--expected "maybe"`, "no-stream"}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--expected", "-1"}, []string{`--expected "-1"`}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--data", "{seats:5}"}, []string{"--data is not valid JSON"}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--data", ""}, []string{"--data is not valid JSON"}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--metadata", "{"}, []string{"--metadata is not valid JSON"}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--id", "42"}, []string{`--id "42" is not a UUID`}},
		{"", []string{"append", "--stream", "s", "--type", "T", "stray"}, []string{`unexpected argument "stray"`}},
		{"", []string{"append", "--stream", "s", "--type", "T", "--nope"}, []string{"not defined: -nope"}},
		{`{"type":"T"}`, []string{"append", "--stream", "s", "--stdin", "--data", "{}"}, []string{"--data does not go with --stdin"}},
		{"", []string{"append", "--stream", "s", "--stdin"}, []string{"no events on stdin"}},
		{`{"type":"T","data":{bad}}`, []string{"append", "--stream", "s", "--stdin"}, []string{"stdin line 1", "invalid character"}},
		{`{"type":"T","dat":{}}`, []string{"append", "--stream", "s", "--stdin"}, []string{"stdin line 1", `unknown field "dat"`}},
		{`{"data":{}}`, []string{"append", "--stream", "s", "--stdin"}, []string{"stdin line 1", `"type" is missing`}},
		{`{"type":5}`, []string{"append", "--stream", "s", "--stdin"}, []string{"stdin line 1", `"type" is a JSON number`}},
		{`{"type":"T","id":"x"}`, []string{"append", "--stream", "s", "--stdin"}, []string{"stdin line 1", `id "x" is not a UUID`}},
		{`{"type":"T"} {"type":"U"}`, []string{"append", "--stream", "s", "--stdin"}, []string{"stdin line 1", "more than one JSON value"}},
		{"", []string{"read"}, []string{"--stream is required"}},
		{"", []string{"read", "--stream", "s", "--from", "middle"}, []string{`--from "middle"`}},
		{"", []string{"read", "--stream", "s", "--limit", "-1"}, []string{"-limit"}},
		{"", []string{"read-all", "--stream-prefix", ""}, []string{"empty prefix"}},
		{"", []string{"subscribe", "--stream", ""}, []string{"--stream needs a stream name"}},
	} {
		c.fails(2, tc.want, tc.stdin, tc.args...)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"read-all", "--db", ""}, nil, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "--db needs a directory") {
		t.Errorf("annals read-all --db '': exit %d, stderr %q", code, stderr.String())
	}

	// Nothing above wrote anything, nor even created the store.
	c.fails(1, []string{"no store in"}, "", "read-all")

	// The store refuses what it does not take.
	c.fails(1, []string{"invalid stream", "disguise"}, "", "append", "--stream", "order-\u202Efdp.exe", "--type", "T")
	c.fails(1, []string{"invalid event[0].type", "disguise"}, "", "append", "--stream", "s", "--type", "T\u200B")
	checkEvents(t, c.ok("", "read-all"))
}

func TestServe(t *testing.T) {
	var stdout, stderr syncBuffer
	_, stop := serveCmd(t, &stdout, &stderr, "--db", t.TempDir())
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after the signal: %s", code, stderr.String())
	}
	for _, want := range []string{"INSECURE", "listening", "shutting down", "stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestServeRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", "0.0.0.0:0"}, "refusing to serve"},
		{[]string{"serve", "--listen", ":0"}, "refusing to serve"},
		{[]string{"serve", "--tls-cert", "c.pem"}, "both --tls-cert and --tls-key"},
		{[]string{"serve", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--insecure"}, "contradict"},
		{[]string{"serve", "--listen", "nonsense"}, "--listen"},
		{[]string{"serve", "--admin-password-file", "p"}, "go with TLS"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(tc.args, "--db", t.TempDir()), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("annals %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), args, nil, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("annals %v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
	usage := stdout.String()
	for _, c := range commands() {
		if !strings.Contains(usage, "\n  "+c.name+" ") {
			t.Errorf("usage does not list command %s", c.name)
		}
		if c.setup == nil {
			continue
		}
		fs, _, _ := newFlagSet(&c)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(usage, "--"+f.Name+" ") && !strings.Contains(usage, "--"+f.Name+"\n") {
				t.Errorf("usage does not list %s --%s", c.name, f.Name)
			}
		})
	}
	for _, want := range []string{`"dataBase64"`, `"caughtUp":true`, `"checkpoint"`, "Exit status", "kurrentdb://127.0.0.1:2113?tls=false"} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage does not mention %s", want)
		}
	}
	for _, line := range strings.Split(usage, "\n") {
		if len(line) > 100 {
			t.Errorf("usage line of %d characters: %q", len(line), line)
		}
	}

	// No command: the usage, on stderr, exit 2.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), nil, nil, &stdout, &stderr); code != 2 || stderr.String() != usage || stdout.Len() != 0 {
		t.Errorf("annals: exit %d, stdout %q", code, stdout.String())
	}
	// One command's help.
	for _, args := range [][]string{{"help", "read"}, {"read", "-h"}, {"read", "--help"}} {
		stdout.Reset()
		stderr.Reset()
		code := run(context.Background(), args, nil, &stdout, &stderr)
		if code != 0 || !strings.HasPrefix(stdout.String(), "annals read: ") || !strings.Contains(stdout.String(), "--backwards") ||
			strings.Contains(stdout.String(), "read-all") {
			t.Errorf("annals %v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"bogus"}, nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown command "bogus"`) {
		t.Errorf("annals bogus: exit %d, stderr %q", code, stderr.String())
	}
}

// The data commands work against a running server with --server, through
// the official KurrentDB Go client.
func TestServerFlag(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet, Limits: annals.Limits{AllowSystemStreams: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := server.New(store, server.Options{Logger: quiet, Limits: annals.Limits{AllowSystemStreams: true}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	url := "kurrentdb://" + l.Addr().String() + "?tls=false"

	do := func(stdin string, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(args, "--server", url), strings.NewReader(stdin), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := do("", "append", "--stream", "order-1", "--expected", "no-stream", "--type", "Placed", "--data", `{"seats":5}`); code != 0 || !strings.Contains(out, `"lastPosition":1`) {
		t.Fatalf("append: exit %d, %s %s", code, out, errOut)
	}
	if code, _, errOut := do("", "append", "--stream", "order-1", "--expected", "no-stream", "--type", "Placed"); code != 1 || !strings.Contains(errOut, "wrong expected") {
		t.Fatalf("stale append: exit %d, %s", code, errOut)
	}
	if code, out, errOut := do(`{"type":"A"}`+"\n"+`{"type":"B"}`+"\n", "append", "--stream", "order-2", "--stdin"); code != 0 || !strings.Contains(out, `"lastPosition":3`) {
		t.Fatalf("append --stdin: exit %d, %s %s", code, out, errOut)
	}
	code, out, errOut := do("", "read", "--stream", "order-1")
	if code != 0 || !strings.Contains(out, `"type":"Placed"`) || !strings.Contains(out, `"data":{"seats":5}`) {
		t.Fatalf("read: exit %d, %s %s", code, out, errOut)
	}
	code, out, _ = do("", "read-all", "--category", "order")
	if code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("read-all: exit %d:\n%s", code, out)
	}
	if code, _, errOut := do("", "read", "--stream", "missing"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("read of a missing stream: exit %d, %s", code, errOut)
	}
	// Stopped as SIGINT stops it: a cancel, not a deadline (a deadline
	// travels to the server, which may end the call first).
	// Cancelled once it has caught up, however long that takes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"subscribe", "--server", url}, strings.NewReader(""), &stdout, &stderr)
	}()
	deadline := time.Now().Add(hangGuard)
	for !strings.Contains(stdout.String(), `"caughtUp":true`) {
		select {
		case code := <-exited:
			t.Fatalf("subscribe exited %d before catching up: %s %s", code, stdout.String(), stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribe did not catch up in %v: %s", hangGuard, stdout.String())
		}
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("subscribe: exit %d, %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"caughtUp":true`) || strings.Count(stdout.String(), `"stream":"order-`) != 3 {
		t.Fatalf("subscribe printed:\n%s", stdout.String())
	}
}

// --exclude-system goes with another filter, as the usage's example has it:
// a user stream may hold an event of a $ type (written through a server),
// and it is left out.
func TestReadAllCategoryExcludeSystem(t *testing.T) {
	c := newCLI(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := embedded.Open(c.db, embedded.Options{Logger: quiet, Limits: annals.Limits{AllowSystemStreams: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range [][2]string{{"order-1", "Created"}, {"order-1", "$system"}, {"invoice-1", "Created"}, {"order-2", "Created"}} {
		if _, err := s.Append(context.Background(), ev[0], annals.Any, annals.EventData{Type: ev[1], Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, c.ok("", "read-all", "--category", "order", "--exclude-system"), "order-1@0#1", "order-2@0#4")
	checkEvents(t, c.ok("", "read-all", "--category", "order", "--exclude-system", "--limit", "2"), "order-1@0#1", "order-2@0#4")
	checkEvents(t, c.ok("", "read-all", "--category", "order"), "order-1@0#1", "order-1@1#2", "order-2@0#4")
	c.fails(2, []string{"at most one filter"}, "", "read-all", "--category", "order", "--stream-prefix", "x", "--exclude-system")

	lines, stop := c.subscribe(3, "--category", "order", "--exclude-system")
	stop()
	checkEvents(t, lines[:2], "order-1@0#1", "order-2@0#4")
	if lines[2]["caughtUp"] != true {
		t.Fatalf("after the history: %v", lines[2])
	}
}
