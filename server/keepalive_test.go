package server_test

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// blackHole forwards TCP connections to a server until hole is called;
// from then on every byte either way vanishes, as when a peer's host or
// network is gone, and closed reports each connection the server closes.
type blackHole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	holed  bool
	ups    []net.Conn
	closed chan struct{} // one value per server-side connection closed
}

func newBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, target: target, closed: make(chan struct{}, 1024)}
	t.Cleanup(func() { ln.Close() })
	go b.serve()
	return b
}

func (b *blackHole) serve() {
	for {
		down, err := b.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", b.target)
		if err != nil {
			down.Close()
			continue
		}
		b.mu.Lock()
		b.ups = append(b.ups, up)
		b.mu.Unlock()
		go b.pipe(down, up, false)
		go b.pipe(up, down, true)
	}
}

// pipe copies src to dst until the hole opens, then swallows src. fromServer
// reports src's end.
func (b *blackHole) pipe(src, dst net.Conn, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		b.mu.Lock()
		holed := b.holed
		b.mu.Unlock()
		if n > 0 && !holed {
			dst.Write(buf[:n])
		}
		if err != nil {
			if fromServer {
				b.closed <- struct{}{}
			}
			if !holed {
				dst.Close()
			}
			return
		}
	}
}

func (b *blackHole) hole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holed = true
}

// Clients that vanish with a subscription open are closed by the server,
// their calls ended, once keepalive pings go unanswered.
func TestVanishedPeersReclaimed(t *testing.T) {
	store := teststores.Embedded(t)
	var opts server.Options
	server.SetKeepalive(&opts, 100*time.Millisecond, 100*time.Millisecond)
	addr := teststores.ServeStore(t, store, opts)
	hole := newBlackHole(t, addr)

	const clients = 20
	for range clients {
		conn, err := grpc.NewClient("passthrough:///"+hole.ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		sub, err := streams.NewStreamsClient(conn).Read(context.Background(), &streams.ReadReq{Options: &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
				AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
			CountOption:   &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}},
			FilterOption:  &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
			UuidOption:    &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
			ReadDirection: streams.ReadReq_Options_Forwards,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Recv(); err != nil { // the confirmation: the call runs on the server
			t.Fatal(err)
		}
	}
	if n := goroutinesIn(readHandler); n < clients {
		t.Fatalf("%d goroutines in %s with %d subscriptions open", n, readHandler, clients)
	}
	hole.hole()
	guard := time.After(60 * time.Second) // a hang guard: a normal run takes well under a second
	for i := range clients {
		select {
		case <-hole.closed:
		case <-guard:
			t.Fatalf("%d of %d vanished clients' connections still open after 60 s", clients-i, clients)
		}
	}
	// Their calls end with their connections.
	for tick := time.NewTicker(10 * time.Millisecond); goroutinesIn(readHandler) > 0; {
		select {
		case <-tick.C:
		case <-guard:
			t.Fatalf("%d calls of vanished clients still run after 60 s", goroutinesIn(readHandler))
		}
	}
}

// readHandler is the function a subscription's call runs in.
const readHandler = "server.(*streamsServer).Read("

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte(fn))
		}
		buf = make([]byte, 2*len(buf))
	}
}
