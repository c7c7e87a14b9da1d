package postgres

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
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
}

// newCutProxy starts a proxy to the test server; p.dsn reaches the server
// through it.
func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
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
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, p.dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	var ids []uuid.UUID
	for i, dir := range []*atomic.Bool{&p.toCli, &p.toSrv, &p.toCli, &p.toSrv} {
		armTo.Store(dir)
		id := uuid.New()
		res, err := s.Append(ctx, "cut-1", annals.Any, annals.EventData{ID: id, Type: "Cut"})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if res.LastPosition != uint64(i+1) || res.NextExpected != annals.Exact(uint64(i)) {
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
