package console

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Limits of the error log the console shows.
const (
	// LogRecords is how many warnings and errors the log keeps: the
	// oldest go first.
	LogRecords = 1000
	// maxLogMessageBytes and maxLogAttrs bound one record.
	maxLogMessageBytes = 4 << 10
	maxLogAttrs        = 16
)

// Record is one warning or error of the log.
type Record struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	// Attrs are the record's attributes as text, the logger's own (With)
	// first; Concerns names what the record is about, from the first of
	// its attributes that names a projection, a group, a stream or a
	// remote address.
	Attrs    map[string]string `json:"attrs,omitempty"`
	Concerns string            `json:"concerns,omitempty"`
}

// Log keeps the last LogRecords warnings and errors logged through its
// Handler, for the console's error log.
type Log struct {
	mu      sync.Mutex
	records []Record // a ring: next is where the next one goes
	next    int
	full    bool
}

// NewLog makes an empty log.
func NewLog() *Log { return &Log{records: make([]Record, LogRecords)} }

// Records returns the records kept, newest first.
func (l *Log) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = len(l.records)
	}
	out := make([]Record, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.records[(l.next-i+len(l.records))%len(l.records)])
	}
	return out
}

func (l *Log) add(r Record) {
	l.mu.Lock()
	l.records[l.next] = r
	l.next = (l.next + 1) % len(l.records)
	if l.next == 0 {
		l.full = true
	}
	l.mu.Unlock()
}

// Handler returns a handler that passes every record to next and keeps
// the warnings and errors in l.
func (l *Log) Handler(next slog.Handler) slog.Handler { return &tee{log: l, next: next} }

type tee struct {
	log   *Log
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs, groups flattened into their keys
	group string
}

func (t *tee) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || t.next.Enabled(ctx, level)
}

func (t *tee) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		t.log.add(t.record(r))
	}
	if !t.next.Enabled(ctx, r.Level) {
		return nil
	}
	return t.next.Handle(ctx, r)
}

func (t *tee) record(r slog.Record) Record {
	rec := Record{Time: r.Time.UTC(), Level: r.Level.String(), Message: truncate(r.Message), Attrs: map[string]string{}}
	add := func(a slog.Attr) bool {
		if len(rec.Attrs) >= maxLogAttrs {
			return false
		}
		key, value := a.Key, a.Value.Resolve().String()
		if t.group != "" {
			key = t.group + "." + key
		}
		rec.Attrs[key] = truncate(value)
		if rec.Concerns == "" && concerning(a.Key) {
			rec.Concerns = a.Key + " " + truncate(value)
		}
		return true
	}
	for _, a := range t.attrs {
		add(a)
	}
	r.Attrs(add)
	return rec
}

// concerning reports whether an attribute's key names what a record is
// about.
func concerning(key string) bool {
	switch key {
	case "projection", "group", "stream", "subscription", "subject", "remote", "address", "method":
		return true
	}
	return false
}

func truncate(s string) string {
	if len(s) <= maxLogMessageBytes {
		return s
	}
	return strings.ToValidUTF8(s[:maxLogMessageBytes], "") + "…"
}

func (t *tee) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &tee{log: t.log, next: t.next.WithAttrs(attrs), attrs: append(append([]slog.Attr(nil), t.attrs...), attrs...), group: t.group}
}

func (t *tee) WithGroup(name string) slog.Handler {
	g := name
	if t.group != "" {
		g = t.group + "." + name
	}
	return &tee{log: t.log, next: t.next.WithGroup(name), attrs: t.attrs, group: g}
}
