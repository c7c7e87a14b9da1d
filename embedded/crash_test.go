package embedded

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// The crash test runs a writer in a child process (this test binary, re-run
// with crashChildEnv set), kills it with SIGKILL at a random moment, reopens
// the store and checks it. Repeated on the same directory, so each run also
// recovers from the previous crashes.
const (
	crashChildEnv = "ANNALS_CRASH_CHILD_DIR"
	crashRuns     = 24
	crashWriters  = 16
	// crashAckGuard bounds the wait for a child's first acknowledged
	// append: a hang guard, far above the milliseconds it takes.
	crashAckGuard = 5 * time.Minute
)

// crashMeta is written into every event's metadata, so the checker can tell
// which append it belongs to.
type crashMeta struct {
	Append string `json:"append"` // the append's id
	Index  int    `json:"i"`
	Count  int    `json:"n"`
}

// crashAck is what the child prints once an append is acknowledged.
type crashAck struct {
	Append string          `json:"append"`
	Stream string          `json:"stream"`
	First  annals.Position `json:"first"`
	Last   annals.Position `json:"last"`
	IDs    []uuid.UUID     `json:"ids"`
	// Streams, for a multi-stream append, is each event's stream.
	Streams []string `json:"streams,omitempty"`
	next    annals.ExpectedRevision
}

// streamOf is the stream of the ack's event i.
func (a crashAck) streamOf(i int) string {
	if a.Streams != nil {
		return a.Streams[i]
	}
	return a.Stream
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if dir := os.Getenv(walNoSpaceChildEnv); dir != "" {
		walNoSpaceChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild appends until it is killed, printing one JSON line per
// acknowledged append.
func crashChild(dir string) {
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	run := uuid.NewString()[:8]
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("crash-%s-%d", run, g)
			expected := annals.NoStream
			for {
				n := 1 + rand.IntN(8)
				appendID := uuid.NewString()
				events := make([]annals.EventData, n)
				for i := range events {
					md, _ := json.Marshal(crashMeta{Append: appendID, Index: i, Count: n})
					events[i] = annals.EventData{ID: uuid.New(), Type: "Crashed", Data: make([]byte, rand.IntN(400)), Metadata: md}
				}
				var ack crashAck
				switch rand.IntN(4) {
				case 0:
					ack = crashAppend(s, "crash-shared", annals.Any, events)
				case 1:
					ack, expected = crashMulti(s, stream, expected, events)
				default:
					ack = crashAppend(s, stream, expected, events)
					expected = ack.next
				}
				ack.Append = appendID
				line, _ := json.Marshal(ack)
				mu.Lock()
				out.Write(append(line, '\n'))
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// crashAppend appends events to stream, or exits.
func crashAppend(s *Store, stream string, expected annals.ExpectedRevision, events []annals.EventData) crashAck {
	r, err := s.Append(context.Background(), stream, expected, events...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "append:", err)
		os.Exit(4)
	}
	ack := crashAck{Stream: stream, First: r.FirstPosition, Last: r.LastPosition, next: r.NextExpected}
	for _, e := range events {
		ack.IDs = append(ack.IDs, e.ID)
	}
	return ack
}

// crashMulti appends events across the writer's stream (checked at
// expected) and the shared multi streams, interleaved, or exits. It
// returns the ack and the writer's stream's next expected revision.
func crashMulti(s *Store, stream string, expected annals.ExpectedRevision, events []annals.EventData) (crashAck, annals.ExpectedRevision) {
	m := annals.MultiAppend{Checks: []annals.StreamCheck{{Stream: stream, Expected: expected}}}
	ack := crashAck{}
	for i, e := range events {
		target := stream
		if i%2 == 1 {
			target = fmt.Sprintf("crash-multi-%d", rand.IntN(3))
		}
		m.Records = append(m.Records, annals.Record{Stream: target, Event: e})
		ack.IDs = append(ack.IDs, e.ID)
		ack.Streams = append(ack.Streams, target)
	}
	r, err := s.AppendMulti(context.Background(), m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "multi-stream append:", err)
		os.Exit(4)
	}
	ack.First, ack.Last = r.FirstPosition, r.LastPosition
	return ack, r.Streams[0].NextExpected
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var acks []crashAck
	for run := range crashRuns {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := make(chan []crashAck, 1)
		acked := make(chan struct{}) // closed at the run's first ack
		go func() {
			var runAcks []crashAck
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var a crashAck
				if err := json.Unmarshal(sc.Bytes(), &a); err == nil {
					if runAcks = append(runAcks, a); len(runAcks) == 1 {
						close(acked)
					}
				}
			}
			got <- runAcks
		}()
		// Killed a random while after its first acknowledged append
		// (however long opening the store took), so that every run
		// has acknowledged appends to check.
		select {
		case <-acked:
		case <-got:
			t.Fatalf("run %d: the child ended before any append: %v %s", run, cmd.Wait(), stderr.String())
		case <-time.After(crashAckGuard):
			cmd.Process.Kill()
			t.Fatalf("run %d: no append acknowledged in %v: %s", run, crashAckGuard, stderr.String())
		}
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		runAcks := <-got
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d: child ended on its own (%v): %s", run, werr, stderr.String())
		}
		acks = append(acks, runAcks...)
		n := checkCrashedStore(t, dir, acks)
		t.Logf("run %d: killed after %d acknowledged appends; store holds %d events", run, len(runAcks), n)
	}
	if len(acks) == 0 {
		t.Fatal("no append was ever acknowledged: the test proved nothing")
	}
}

// retryAck appends an acknowledged append's events again, as its writer
// would after a lost acknowledgement.
func retryAck(ctx context.Context, s *Store, a crashAck) (annals.AppendResult, error) {
	if a.Streams == nil {
		events := make([]annals.EventData, len(a.IDs))
		for j, id := range a.IDs {
			events[j] = annals.EventData{ID: id, Type: "Crashed"}
		}
		return s.Append(ctx, a.Stream, annals.Any, events...)
	}
	m := annals.MultiAppend{}
	for j, id := range a.IDs {
		m.Records = append(m.Records, annals.Record{Stream: a.Streams[j], Event: annals.EventData{ID: id, Type: "Crashed"}})
	}
	r, err := s.AppendMulti(ctx, m)
	return annals.AppendResult{FirstPosition: r.FirstPosition, LastPosition: r.LastPosition}, err
}

// checkCrashedStore reopens the store and checks every invariant a crash
// must keep. It returns the number of events.
func checkCrashedStore(t *testing.T, dir string, acks []crashAck) int {
	t.Helper()
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	ctx := context.Background()

	type placed struct {
		pos    annals.Position
		stream string
	}
	byID := map[uuid.UUID]placed{}
	appends := map[string][]annals.Event{}
	var want annals.Position = 1
	for e, err := range s.ReadAll(ctx, annals.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position != want {
			t.Fatalf("gap in the global log: want position %d, got %d", want, e.Position)
		}
		want++
		if _, dup := byID[e.ID]; dup {
			t.Fatalf("event %s recorded twice", e.ID)
		}
		byID[e.ID] = placed{e.Position, e.Stream}
		var m crashMeta
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			t.Fatalf("position %d: metadata: %v", e.Position, err)
		}
		appends[m.Append] = append(appends[m.Append], e)
	}
	// No partial append: every append's events are all there, at
	// consecutive positions, and at consecutive revisions of each stream
	// (a multi-stream append's events span streams).
	for id, evs := range appends {
		var m crashMeta
		json.Unmarshal(evs[0].Metadata, &m)
		if len(evs) != m.Count {
			t.Fatalf("append %s is partial: %d of %d events visible", id, len(evs), m.Count)
		}
		last := map[string]annals.Revision{}
		for i, e := range evs {
			if e.Position != evs[0].Position+annals.Position(i) {
				t.Fatalf("append %s is not contiguous in $all", id)
			}
			if r, seen := last[e.Stream]; seen && e.Revision != r+1 {
				t.Fatalf("append %s is not contiguous in stream %s", id, e.Stream)
			}
			last[e.Stream] = e.Revision
		}
	}
	// Every acknowledged append is there, where the acknowledgement said.
	for _, a := range acks {
		for i, id := range a.IDs {
			p, ok := byID[id]
			if !ok {
				t.Fatalf("acknowledged event %s (append %s) is lost", id, a.Append)
			}
			if p.pos != a.First+annals.Position(i) || p.stream != a.streamOf(i) {
				t.Fatalf("acknowledged event %s is at %d in %q, acknowledged at %d in %q", id, p.pos, p.stream, a.First+annals.Position(i), a.streamOf(i))
			}
		}
	}
	// Streams replay densely from revision 0.
	streams := map[string]bool{}
	for _, p := range byID {
		streams[p.stream] = true
	}
	for stream := range streams {
		var rev annals.Revision
		for e, err := range s.ReadStream(ctx, stream, annals.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Revision != rev {
				t.Fatalf("stream %s: want revision %d, got %d", stream, rev, e.Revision)
			}
			rev++
		}
	}
	// The id index survived: retrying an acknowledged append returns its
	// original place and writes nothing.
	for i := 0; i < len(acks); i += max(1, len(acks)/50) {
		a := acks[i]
		r, err := retryAck(ctx, s, a)
		if err != nil {
			t.Fatalf("retrying acknowledged append %s: %v", a.Append, err)
		}
		if r.FirstPosition != a.First || r.LastPosition != a.Last {
			t.Fatalf("retrying acknowledged append %s: at %d..%d, acknowledged at %d..%d", a.Append, r.FirstPosition, r.LastPosition, a.First, a.Last)
		}
	}
	if s.Position() != want-1 {
		t.Fatalf("retries wrote: position %d, want %d", s.Position(), want-1)
	}
	// The store still writes after recovery.
	if _, err := s.Append(ctx, "crash-check", annals.Any); err != nil {
		t.Fatal(err)
	}
	return int(want - 1)
}
