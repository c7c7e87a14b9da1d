package server

import (
	"bufio"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"time"
)

// One port, two servers: the native gRPC server (several times faster than
// gRPC through net/http) and the HTTP server. Each connection goes to one
// of them by what it speaks: with TLS, by the protocol ALPN chose (h2 is
// gRPC); without, by its first bytes (HTTP/2's preface, "PRI * HTTP/2.0",
// is gRPC). HTTP endpoints are therefore served over HTTP/1.1.
//
// ALPN picks by what the client offers (alpnByClient): the gRPC clients
// offer h2 alone, browsers and curl h2 and http/1.1. A client that offers
// http/1.1 gets it, so that a browser opening the console over TLS reaches
// the HTTP server rather than the gRPC one.

const (
	// HandshakeTimeout bounds each step of a new connection's handshake:
	// saying what it speaks (its TLS handshake, or its first bytes), then,
	// for gRPC, HTTP/2's preface and settings exchange. A connection that
	// takes longer is closed: one that connects and stalls holds its place
	// for at most 2 × HandshakeTimeout.
	HandshakeTimeout = 10 * time.Second
	// MaxConnections bounds the open connections; more are closed at once.
	MaxConnections = 16384
	// MaxConnectionsPerAddress bounds the open connections from one remote
	// IP address (loopback included), so that one client cannot take every
	// place; more are closed at once.
	MaxConnectionsPerAddress = 1024
)

// connLimits are the bounds split applies (tests shrink them).
type connLimits struct {
	handshake  time.Duration
	perAddress int
}

// addressCounts counts the open connections by remote IP.
type addressCounts struct {
	mu     sync.Mutex
	open   map[string]int
	total  int
	limits connLimits
}

// take counts a connection from ip, or reports false if a bound is
// reached.
func (a *addressCounts) take(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total >= MaxConnections || a.open[ip] >= a.limits.perAddress {
		return false
	}
	a.total++
	a.open[ip]++
	return true
}

func (a *addressCounts) give(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.open[ip]--; a.open[ip] == 0 {
		delete(a.open, ip)
	}
}

// connListener is a net.Listener fed with connections by split.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// hand passes c to l, or closes it if l is closed.
func (l *connListener) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// split accepts connections on base until it fails (Close), sorting them
// onto grpcL and httpL.
func split(base net.Listener, cfg *tls.Config, lim connLimits, grpcL, httpL *connListener) error {
	defer grpcL.Close()
	defer httpL.Close()
	counts := &addressCounts{open: make(map[string]int), limits: lim}
	for {
		c, err := base.Accept()
		if err != nil {
			return err
		}
		ip := addrIP(c.RemoteAddr())
		if !counts.take(ip) {
			c.Close()
			continue
		}
		go sortConn(&countedConn{Conn: c, counts: counts, ip: ip}, cfg, lim.handshake, grpcL, httpL)
	}
}

// countedConn gives its place back when it is closed.
type countedConn struct {
	net.Conn
	counts *addressCounts
	ip     string
	once   sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.counts.give(c.ip) })
	return c.Conn.Close()
}

func sortConn(c net.Conn, cfg *tls.Config, handshake time.Duration, grpcL, httpL *connListener) {
	if err := c.SetDeadline(time.Now().Add(handshake)); err != nil {
		c.Close()
		return
	}
	if cfg != nil {
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			tc.Close()
			return
		}
		tc.SetDeadline(time.Time{})
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			grpcL.hand(tc)
		} else {
			httpL.hand(tc)
		}
		return
	}
	br := bufio.NewReader(c)
	head, err := br.Peek(3)
	if err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if string(head) == "PRI" {
		grpcL.hand(pc)
	} else {
		httpL.hand(pc)
	}
}

// peekedConn replays the bytes sortConn peeked at.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// alpnByClient is cfg choosing the protocol by the client's offer: h2
// (gRPC) for a client that offers only h2, http/1.1 for one that offers
// it (a browser, curl).
func alpnByClient(cfg *tls.Config) *tls.Config {
	grpcCfg, httpCfg := cfg.Clone(), cfg.Clone()
	grpcCfg.NextProtos = []string{"h2"}
	httpCfg.NextProtos = []string{"http/1.1"}
	out := cfg.Clone()
	out.NextProtos = []string{"h2", "http/1.1"}
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, "http/1.1") || len(hello.SupportedProtos) == 0 {
			return httpCfg, nil
		}
		return grpcCfg, nil
	}
	return out
}
