package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// TestMain lets a test start this binary as `annals`: with ANNALS_AS_MAIN
// set, the test binary runs main instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("ANNALS_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// postgresDSN is the PostgreSQL the tests use (ANNALS_POSTGRES_DSN, or the
// machine's own). Without one the test skips, except under CI=true.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("ANNALS_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		conn.Close(ctx)
		return dsn
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL at %s is unreachable (CI=true, so this fails): %v", dsn, err)
	}
	t.Skipf("PostgreSQL at %s is unreachable; set ANNALS_POSTGRES_DSN (under CI=true this fails): %v", dsn, err)
	return ""
}

// node is one `annals serve --postgres` child process.
type node struct {
	cmd      *exec.Cmd
	addr     string
	client   *kurrentdb.Client
	stopOnce sync.Once
}

func startNode(t *testing.T, dsn, schema string) *node {
	t.Helper()
	return startServe(t, "--postgres", dsn, "--postgres-schema", schema)
}

// startServe starts `annals serve args` as a child process on a free port,
// waits for it to serve and connects a client; the process gets SIGTERM
// when the test ends.
func startServe(t *testing.T, args ...string) *node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], append(append([]string{"serve"}, args...), "--listen", addr)...)
	cmd.Env = append(os.Environ(), "ANNALS_AS_MAIN=1")
	cmd.Stderr = io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, addr: addr}
	t.Cleanup(func() { n.stop(t) })
	n.waitServing(t)
	return n
}

// stop sends the node SIGTERM and waits for it to exit (at most once).
func (n *node) stop(t *testing.T) {
	n.stopOnce.Do(func() {
		cmd, addr := n.cmd, n.addr
		if n.client != nil {
			n.client.Close()
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node %s: %v", addr, err)
			}
		case <-time.After(hangGuard):
			cmd.Process.Kill()
			<-done // gone before the test's other cleanups (a disk to unmount)
			t.Errorf("node %s did not stop on SIGTERM", addr)
		}
	})
}

// waitServing waits for n to answer HTTP, then connects its client.
func (n *node) waitServing(t *testing.T) {
	addr := n.addr
	deadline := time.Now().Add(hangGuard)
	for {
		resp, err := http.Get("http://" + addr + "/health/live")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not come up: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cfg, err := kurrentdb.ParseConnectionString("kurrentdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = func(kurrentdb.LogLevel, string, ...any) {}
	if n.client, err = kurrentdb.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
}

// Three stateless server processes on one PostgreSQL store: official
// clients book seats through all three at once and never overbook, and a
// subscription on each node sees the same $all order.
func TestStatelessNodes(t *testing.T) {
	dsn := postgresDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "annals_nodes_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
			t.Error(err)
		}
	})
	// The nodes start at once: their migrations race for the schema.
	nodes := make([]*node, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { nodes[i] = startNode(t, dsn, schema) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	const capacity, perNode, wants = 100, 12, 4 // 3×12 clients × 4 seats = 144 > 100
	const show = "show-7"
	// A subscription on each node, live before the bookings start: each
	// sees the events appended through every node, in the same order.
	orders := make([][]string, len(nodes))
	var subs sync.WaitGroup
	for i, n := range nodes {
		sub, err := n.client.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs.Go(func() {
			for len(orders[i]) < capacity {
				e := sub.Recv()
				switch {
				case e.SubscriptionDropped != nil:
					t.Errorf("node %d: dropped: %v", i, e.SubscriptionDropped.Error)
					return
				case e.EventAppeared != nil && e.EventAppeared.Event.StreamID == show:
					ev := e.EventAppeared.Event
					orders[i] = append(orders[i], fmt.Sprintf("%d:%s", ev.Position.Commit, ev.EventID))
				}
			}
		})
	}
	var booked, conflicts atomic.Int64
	for _, n := range nodes {
		for range perNode {
			wg.Go(func() {
				for got := 0; got < wants; {
					seats, state, err := seatsOf(ctx, n.client, show)
					if err != nil {
						t.Error(err)
						return
					}
					if seats >= capacity {
						return
					}
					_, err = n.client.AppendToStream(ctx, show, kurrentdb.AppendToStreamOptions{StreamState: state},
						kurrentdb.EventData{EventID: uuid.New(), EventType: "SeatBooked", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)})
					var kerr *kurrentdb.Error
					switch {
					case err == nil:
						booked.Add(1)
						got++
					case errors.As(err, &kerr) && kerr.Code() == kurrentdb.ErrorCodeWrongExpectedVersion:
						conflicts.Add(1)
					default:
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	seats, _, err := seatsOf(ctx, nodes[0].client, show)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booked %d through 3 nodes, %d conflicts retried; the stream holds %d", booked.Load(), conflicts.Load(), seats)
	if booked.Load() != capacity || seats != capacity {
		t.Fatalf("booked %d, stream holds %d: want exactly %d", booked.Load(), seats, capacity)
	}

	subs.Wait()
	for i := 1; i < len(orders); i++ {
		if !slices.Equal(orders[0], orders[i]) {
			t.Fatalf("node %d's $all differs from node 0's:\n%v\n%v", i, orders[i], orders[0])
		}
	}
}

// seatsOf reads show's bookings and the state to append at.
func seatsOf(ctx context.Context, c *kurrentdb.Client, show string) (int, kurrentdb.StreamState, error) {
	rs, err := c.ReadStream(ctx, show, kurrentdb.ReadStreamOptions{}, ^uint64(0)>>1)
	if err != nil {
		return 0, nil, err
	}
	defer rs.Close()
	n := 0
	for {
		_, err := rs.Recv()
		var kerr *kurrentdb.Error
		switch {
		case errors.Is(err, io.EOF):
			if n == 0 {
				return 0, kurrentdb.NoStream{}, nil
			}
			return n, kurrentdb.StreamRevision{Value: uint64(n - 1)}, nil
		case errors.As(err, &kerr) && kerr.Code() == kurrentdb.ErrorCodeResourceNotFound:
			return 0, kurrentdb.NoStream{}, nil
		case err != nil:
			return 0, nil, err
		}
		n++
	}
}
