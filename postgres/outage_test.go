package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// cutProxy forwards TCP connections to PostgreSQL and, when armed, cuts
// the connection that next carries bytes in the armed direction: the
// bytes are dropped and both sides closed. Armed towards the client just
// before COMMIT, the server commits and its answer is lost; armed towards
// the server, COMMIT never arrives and the server rolls back.
type cutProxy struct {
	ln     net.Listener
	dsn    string      // the test DSN, through the proxy
	target string      // the server
	toSrv  atomic.Bool // cut the next client-to-server bytes
	toCli  atomic.Bool // cut the next server-to-client bytes
	cuts   atomic.Int64
	// down: the server is unreachable (connections refused, open ones cut).
	down atomic.Bool
	// downOnCut: the next cut also takes the server down, before the
	// client can see the cut.
	downOnCut atomic.Bool
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
}

// setDown makes the server unreachable through the proxy, or reachable
// again.
func (p *cutProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down.Store(down)
	if !down {
		return
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// newCutProxy starts a proxy to the test server; p.dsn reaches the server
// through it.
func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]struct{}{}}
	p.dsn, p.target = proxiedDSN(t, ln.Addr().String())
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down.Load() {
			// Taken down while this connection was being dialled: it
			// must not outlive the cut.
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s, &p.toSrv)
		go p.pipe(s, c, &p.toCli)
	}
}

func (p *cutProxy) pipe(from, to net.Conn, cut *atomic.Bool) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if cut.CompareAndSwap(true, false) {
				p.cuts.Add(1)
				if p.downOnCut.CompareAndSwap(true, false) {
					p.setDown(true)
				}
				return
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxiedDSN is the test DSN with its host and port replaced by addr.
func proxiedDSN(t *testing.T, addr string) (dsn, target string) {
	t.Helper()
	base := testDSN()
	cfg, err := pgconn.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	target = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	host, port, _ := net.SplitHostPort(addr)
	if strings.Contains(base, "://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = addr
		return u.String(), target
	}
	return base + " host=" + host + " port=" + port, target
}

// openThrough opens a store reaching the server through p.
func openThrough(t *testing.T, ctx context.Context, p *cutProxy, opts Options) *Store {
	t.Helper()
	s, err := Open(ctx, p.dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCommitAnswerLost cuts the writer's connection at COMMIT, both ways:
// when the commit happened and its answer was lost, the append succeeds
// with its original result (found by its event id), written once; when
// COMMIT never reached the server, the group is retried and succeeds,
// written once.
func TestCommitAnswerLost(t *testing.T) {
	t.Parallel()
	admin(t)
	schema := testSchema(t)
	p := newCutProxy(t)

	var armTo atomic.Pointer[atomic.Bool] // which direction the next commit cuts
	opts := Options{
		Schema: schema, MaxConns: 2, Logger: quietLogger(),
		// Quiet the other connections: only the writer talks while armed.
		noNotify: true, PollInterval: time.Hour,
		beforeCommit: func() {
			if dir := armTo.Swap(nil); dir != nil {
				dir.Store(true)
			}
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s := openThrough(t, ctx, p, opts)

	var ids []uuid.UUID
	for i, dir := range []*atomic.Bool{&p.toCli, &p.toSrv, &p.toCli, &p.toSrv} {
		armTo.Store(dir)
		id := uuid.New()
		res, err := s.Append(ctx, "cut-1", annals.Any, annals.EventData{ID: id, Type: "Cut"})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if res.LastPosition != annals.Position(i+1) || res.NextExpected != annals.Exact(annals.Revision(i)) {
			t.Fatalf("append %d: result %+v, want position %d, revision %d", i, res, i+1, i)
		}
		ids = append(ids, id)
	}
	if got := p.cuts.Load(); got != 4 {
		t.Fatalf("%d connections cut, want 4", got)
	}
	got, err := readAllOf(ctx, s, "cut-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("%d events in the stream, want %d (each written once)", len(got), len(ids))
	}
	for i, e := range got {
		if e.ID != ids[i] {
			t.Fatalf("revision %d is %s, want %s", i, e.ID, ids[i])
		}
	}
}

// TestCommitOutcomeUnknown loses COMMIT's answer and keeps the server
// away while the store tries to learn whether it committed: the append
// fails with annals.ErrOutcomeUnknown (and the deprecated ErrCommitUnknown
// still matches it). Retried with the same id once the server is back, it
// succeeds, and the event is written once.
func TestCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	admin(t)
	schema := testSchema(t)
	p := newCutProxy(t)
	var armed atomic.Bool
	opts := Options{
		Schema: schema, MaxConns: 2, Logger: quietLogger(),
		noNotify: true, PollInterval: time.Hour,
		// Short, so the lookup of the lost commit gives up soon.
		RetryWindow: time.Second,
		beforeCommit: func() {
			if armed.Swap(false) {
				p.downOnCut.Store(true)
				p.toCli.Store(true)
			}
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s := openThrough(t, ctx, p, opts)

	id := uuid.New()
	armed.Store(true)
	_, err := s.Append(ctx, "unknown-1", annals.NoStream, annals.EventData{ID: id, Type: "Cut"})
	if !errors.Is(err, annals.ErrOutcomeUnknown) || !errors.Is(err, ErrCommitUnknown) {
		t.Fatalf("append whose commit answer was lost, server away: %v, want annals.ErrOutcomeUnknown", err)
	}
	p.setDown(false)
	res, err := s.Append(ctx, "unknown-1", annals.NoStream, annals.EventData{ID: id, Type: "Cut"})
	if err != nil || res.NextExpected != annals.Exact(0) {
		t.Fatalf("the retry with the same id: %+v, %v; want revision 0", res, err)
	}
	got, err := readAllOf(ctx, s, "unknown-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("the stream holds %d events, want the one, written once", len(got))
	}
}

// TestServerUnreachable takes the server away (through the proxy) and brings
// it back: while it is away, an append fails with ErrNotWritten once the
// retry window has passed (it does not hang) and a read fails; once it is
// back, the pools reconnect by themselves, appends and the live
// subscription carry on, and nothing of the failed append was written.
func TestServerUnreachable(t *testing.T) {
	t.Parallel()
	admin(t)
	schema := testSchema(t)
	p := newCutProxy(t)
	const retryWindow = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := Open(ctx, p.dsn, Options{Schema: schema, MaxConns: 2, Logger: quietLogger(),
		RetryWindow: retryWindow, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Append(ctx, "away-1", annals.NoStream, annals.EventData{Type: "Before"}); err != nil {
		t.Fatal(err)
	}
	live := make(chan annals.Message, 16)
	go func() {
		for m, err := range s.SubscribeToAll(ctx, annals.SubscribeAllOptions{}) {
			if err != nil {
				close(live)
				return
			}
			live <- m
		}
	}()
	for m := range live {
		if m.Kind == annals.MessageCaughtUp {
			break
		}
	}

	p.setDown(true)
	start := time.Now()
	_, err = s.Append(ctx, "away-1", annals.Exact(0), annals.EventData{Type: "Lost"})
	if !errors.Is(err, ErrNotWritten) {
		t.Fatalf("append with the server away: %v, want ErrNotWritten", err)
	}
	// It did not hang: it gave up by its retry window, not by the
	// caller's deadline (a hang guard of minutes).
	if ctx.Err() != nil {
		t.Fatalf("the failed append waited for the caller's deadline (%v); the retry window is %v", time.Since(start), retryWindow)
	}
	t.Logf("the failed append took %v; the retry window is %v", time.Since(start).Round(time.Millisecond), retryWindow)
	if _, err := readAllOf(ctx, s, "away-1"); err == nil {
		t.Fatalf("a read with the server away succeeded")
	}

	p.setDown(false)
	res, err := s.Append(ctx, "away-1", annals.Exact(0), annals.EventData{Type: "After"})
	if err != nil {
		t.Fatalf("append once the server is back: %v", err)
	}
	if res.LastPosition != 2 {
		t.Fatalf("append once the server is back at position %d, want 2 (the failed one wrote nothing)", res.LastPosition)
	}
	select {
	case m, ok := <-live:
		if !ok || m.Kind != annals.MessageEvent || m.Event.Position != 2 || m.Event.Type != "After" {
			t.Fatalf("the live subscription: %+v (open %v), want the event at 2", m, ok)
		}
	case <-time.After(hangGuard):
		t.Fatalf("the live subscription did not deliver the append made after the outage")
	}
}
