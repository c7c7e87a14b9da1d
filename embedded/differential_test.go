package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/memory"
	"github.com/google/uuid"
)

// TestDifferential drives the embedded store and the reference (memory)
// store with the same random operations — appends under every kind of
// expectation, retries, deletes, tombstones, metadata, reads in every
// direction — and requires the same answers from both, reopening the
// embedded store now and then. It finds what the conformance suite's
// hand-written cases miss: page and chunk boundaries, cache misses, the
// head derived from the index after a reopen. Both stores plan their
// writes with internal/core, so both also answer to the oracle, a naive
// model written without it (oracle_test.go): a planning bug they share
// shows there.
func TestDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runDifferential(t, seed, 1500)
		})
	}
}

// fakeClock gives both stores the same recorded times.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func runDifferential(t *testing.T, seed uint64, ops int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	open := func() *embedded.Store {
		s, err := embedded.Open(dir, embedded.Options{
			StreamCacheEntries: 4, ReadPageBytes: 2048, GroupOps: 4,
			Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	emb := open()
	defer func() { emb.Close() }()
	ref := memory.New(memory.Options{Now: clock.Now})
	defer ref.Close()
	orc := newOracle()

	streams := []string{"a-1", "a-2", "b-1", "b-2", "c", "d-1"}
	var recent [][]annals.EventData // earlier appends, for retries
	expectation := func(stream string) annals.ExpectedRevision {
		switch rng.IntN(6) {
		case 0:
			return annals.Any
		case 1:
			return annals.NoStream
		case 2:
			return annals.StreamExists
		}
		// Mostly the right revision, sometimes a wrong one.
		var last annals.Revision
		found := false
		for e, err := range ref.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
			if err == nil {
				last, found = e.Revision, true
			}
		}
		if !found || rng.IntN(4) == 0 {
			return annals.Exact(annals.Revision(rng.IntN(20)))
		}
		return annals.Exact(last)
	}
	newEvents := func() []annals.EventData {
		n := rng.IntN(5)
		if rng.IntN(10) == 0 {
			n = 40 + rng.IntN(100) // cross chunk and page boundaries
		}
		events := make([]annals.EventData, n)
		for i := range events {
			data := make([]byte, rng.IntN(300))
			for j := range data {
				data[j] = byte(rng.IntN(256))
			}
			var id uuid.UUID
			for j := range id {
				id[j] = byte(rng.IntN(256))
			}
			events[i] = annals.EventData{ID: id, Type: fmt.Sprintf("T%d", rng.IntN(3)), ContentType: annals.ContentTypeBinary, Data: data}
		}
		return events
	}

	for op := 0; op < ops; op++ {
		stream := streams[rng.IntN(len(streams))]
		clock.advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
		what := ""
		var got, want, model any
		switch k := rng.IntN(20); {
		case k < 9:
			events := newEvents()
			if len(recent) > 0 && rng.IntN(5) == 0 {
				events = recent[rng.IntN(len(recent))] // a retry, here or elsewhere
			}
			exp := expectation(stream)
			what = fmt.Sprintf("append %d events to %s at %v", len(events), stream, exp)
			r1, e1 := emb.Append(ctx, stream, exp, events...)
			r2, e2 := ref.Append(ctx, stream, exp, events...)
			got, want = outcome(r1, e1), outcome(r2, e2)
			model = outcome(orc.Append(stream, exp, events, clock.Now))
			if e2 == nil && len(events) > 0 {
				recent = append(recent, events)
			}
		case k < 10:
			exp := expectation(stream)
			what = fmt.Sprintf("delete %s at %v", stream, exp)
			r1, e1 := emb.Delete(ctx, stream, exp)
			r2, e2 := ref.Delete(ctx, stream, exp)
			got, want = outcome(r1, e1), outcome(r2, e2)
			model = outcome(orc.Delete(stream, exp, clock.Now))
		case k < 11 && rng.IntN(3) == 0:
			exp := expectation(stream)
			what = fmt.Sprintf("tombstone %s at %v", stream, exp)
			r1, e1 := emb.Tombstone(ctx, stream, exp)
			r2, e2 := ref.Tombstone(ctx, stream, exp)
			got, want = outcome(r1, e1), outcome(r2, e2)
			model = outcome(orc.Tombstone(stream, exp, clock.Now))
		case k < 12:
			md := annals.StreamMetadata{}
			switch rng.IntN(4) {
			case 0:
				md.MaxCount = uint64(1 + rng.IntN(10))
			case 1:
				md.TruncateBefore = annals.Revision(rng.IntN(15))
			case 2:
				md.MaxAge = time.Duration(1+rng.IntN(30)) * time.Second
			}
			what = fmt.Sprintf("set metadata of %s to %+v", stream, md)
			r1, e1 := emb.SetStreamMetadata(ctx, stream, annals.Any, md)
			r2, e2 := ref.SetStreamMetadata(ctx, stream, annals.Any, md)
			got, want = outcome(r1, e1), outcome(r2, e2)
			model = outcome(orc.SetStreamMetadata(stream, annals.Any, md, clock.Now))
		case k < 16:
			opts := annals.ReadStreamOptions{Limit: uint64(rng.IntN(4) * rng.IntN(40))}
			if rng.IntN(2) == 0 {
				opts.Direction, opts.From = annals.Backwards, annals.End
			}
			if rng.IntN(3) == 0 {
				opts.From = annals.Revision(rng.IntN(60))
			}
			what = fmt.Sprintf("read %s %+v", stream, opts)
			got, want = drain(emb.ReadStream(ctx, stream, opts)), drain(ref.ReadStream(ctx, stream, opts))
			model = drain(orc.ReadStream(stream, opts, clock.Now()))
		case k < 18:
			opts := annals.ReadAllOptions{Limit: uint64(rng.IntN(3) * rng.IntN(300))}
			if rng.IntN(2) == 0 {
				opts.Direction, opts.From = annals.Backwards, annals.End
			}
			if rng.IntN(3) == 0 {
				opts.From = annals.Position(rng.IntN(2000))
			}
			if rng.IntN(3) == 0 {
				opts.Filter = annals.CategoryFilter("a")
			}
			what = fmt.Sprintf("read $all %+v", opts)
			got, want = drain(emb.ReadAll(ctx, opts)), drain(ref.ReadAll(ctx, opts))
			model = drain(orc.ReadAll(opts))
		case k < 19:
			what = "stream metadata of " + stream
			m1, r1, e1 := emb.StreamMetadata(ctx, stream)
			m2, r2, e2 := ref.StreamMetadata(ctx, stream)
			got, want = fmt.Sprint(m1, r1, errKind(e1)), fmt.Sprint(m2, r2, errKind(e2))
			m3, r3, e3 := orc.StreamMetadata(stream)
			model = fmt.Sprint(m3, r3, errKind(e3))
		default:
			what = "reopen"
			if err := emb.Close(); err != nil {
				t.Fatal(err)
			}
			emb = open()
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("op %d (%s):\nembedded:  %v\nreference: %v", op, what, got, want)
		}
		if !reflect.DeepEqual(want, model) {
			t.Fatalf("op %d (%s): the stores agree, the oracle does not:\nstores: %v\noracle: %v", op, what, want, model)
		}
	}
	// Finally the whole log must be the same.
	got, want := drain(emb.ReadAll(ctx, annals.ReadAllOptions{})), drain(ref.ReadAll(ctx, annals.ReadAllOptions{}))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the logs differ: %d vs %d entries", len(got.([]string)), len(want.([]string)))
	}
	if model := drain(orc.ReadAll(annals.ReadAllOptions{})); !reflect.DeepEqual(want, model) {
		t.Fatalf("the stores' log and the oracle's differ: %d vs %d entries", len(want.([]string)), len(model.([]string)))
	}
	t.Logf("%d operations, %d events", ops, len(got.([]string)))
}

// outcome renders a write's answer; generated ids are never involved (the
// test supplies every id), so positions and revisions must agree exactly.
func outcome[R any](r R, err error) string {
	if err != nil {
		return errKind(err)
	}
	return fmt.Sprintf("%+v", r)
}

func errKind(err error) string {
	var wrong *annals.WrongExpectedRevisionError
	var dup *annals.DuplicateEventError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &wrong):
		return fmt.Sprintf("wrong expected: %s expected %v actual %v", wrong.Stream, wrong.Expected, wrong.Actual)
	case errors.As(err, &dup):
		return fmt.Sprintf("duplicate %s at %s@%d", dup.ID, dup.Stream, dup.Revision)
	case errors.Is(err, annals.ErrStreamNotFound):
		return "not found"
	case errors.Is(err, annals.ErrStreamDeleted):
		return "deleted"
	case errors.Is(err, annals.ErrInvalidInput):
		return "invalid"
	}
	return "error: " + err.Error()
}

// drain renders a read: every event, with what a store records, then the
// error that ended it.
func drain(seq func(func(annals.Event, error) bool)) any {
	var out []string
	for e, err := range seq {
		if err != nil {
			out = append(out, errKind(err))
			break
		}
		id := e.ID.String()
		if strings.HasPrefix(e.Type, "$") {
			id = "(generated)" // the stores' own events: ids differ
		}
		h := fnv.New64a()
		h.Write(e.Data)
		out = append(out, fmt.Sprintf("%d %s@%d %s %s %s data:%d/%x meta:%q %s", e.Position, e.Stream, e.Revision, id, e.Type, e.ContentType,
			len(e.Data), h.Sum64(), e.Metadata, e.Recorded.Format(time.RFC3339Nano)))
	}
	return out
}
