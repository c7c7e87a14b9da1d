package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	// budgetBytes is the bound on appends in progress in these tests.
	budgetBytes = 1 << 20
	// budgetEventBytes is one event's data: three fit, four do not.
	budgetEventBytes = 300 << 10
)

// serveBudget serves a fresh store with a 1 MiB bound on appends in
// progress and the given waits, and returns the server and a connection.
func serveBudget(t *testing.T, roomWait, receiveTimeout time.Duration, onWait func()) (*server.Server, *grpc.ClientConn) {
	t.Helper()
	opts := server.Options{Limits: annals.Limits{MaxAppendSizeBytes: budgetBytes}, MaxAppendBytesInProgress: budgetBytes,
		Logger: slog.New(slog.DiscardHandler)}
	server.SetAppendLimits(&opts, roomWait, receiveTimeout, onWait)
	srv, err := server.New(teststores.Embedded(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

// openAppend starts an Append of n events of budgetEventBytes, not
// finished.
func openAppend(t *testing.T, ctx context.Context, conn *grpc.ClientConn, n int) grpc.ClientStreamingClient[streams.AppendReq, streams.AppendResp] {
	t.Helper()
	call, err := streams.NewStreamsClient(conn).Append(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := call.Send(options("held-" + uuid.NewString())); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := call.Send(proposed("Big", bytes.Repeat([]byte("x"), budgetEventBytes))); err != nil {
			t.Fatal(err)
		}
	}
	return call
}

// waitHeld waits until srv's appends in progress hold want bytes.
func waitHeld(t *testing.T, srv *server.Server, want int) {
	t.Helper()
	guard := time.After(60 * time.Second) // a hang guard: a normal run takes milliseconds
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for server.AppendBytesHeld(srv) != want {
		select {
		case <-tick.C:
		case <-guard:
			t.Fatalf("appends in progress hold %d bytes after 60 s, want %d", server.AppendBytesHeld(srv), want)
		}
	}
}

// eventBytes is what one of openAppend's events counts for.
func eventBytes() int { return len("Big") + budgetEventBytes }

// An append that finds the bound reached waits for room, and fails with
// ResourceExhausted if none comes in time; the bytes held go when the
// appends holding them end.
func TestAppendsInProgressBounded(t *testing.T) {
	srv, conn := serveBudget(t, 20*time.Millisecond, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	openAppend(t, ctx, conn, 3)
	waitHeld(t, srv, 3*eventBytes())

	_, err := openAppend(t, context.Background(), conn, 1).CloseAndRecv()
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("an append past the bound: %v, want ResourceExhausted", err)
	}
	batch := openBatch(t, context.Background(), conn)
	cid := uuid.New()
	big := batchEvents(uuid.New())
	big[0].Data = bytes.Repeat([]byte("x"), budgetEventBytes)
	if err := batch.Send(&streams.BatchAppendReq{CorrelationId: correlation(cid), Options: batchOptions("order-1", "any"),
		ProposedMessages: big, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	if got, r := recvBatch(t, batch); got != cid || r.GetError() == nil || codes.Code(r.GetError().Code) != codes.ResourceExhausted {
		t.Fatalf("a BatchAppend append past the bound: %v %v, want its ResourceExhausted", got, r)
	}
	cancel() // the holder goes: its bytes with it
	waitHeld(t, srv, 0)
	if _, err := openAppend(t, context.Background(), conn, 3).CloseAndRecv(); err != nil {
		t.Fatalf("an append with room: %v", err)
	}
	waitHeld(t, srv, 0)
}

// An append waiting for room goes on once an append in progress finishes.
func TestAppendWaitsForRoom(t *testing.T) {
	waiting := make(chan struct{}, 1)
	srv, conn := serveBudget(t, time.Hour, time.Hour, func() { waiting <- struct{}{} })
	holder := openAppend(t, context.Background(), conn, 3)
	waitHeld(t, srv, 3*eventBytes())
	done := make(chan error, 1)
	go func() {
		_, err := openAppend(t, context.Background(), conn, 1).CloseAndRecv()
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("an append past the bound did not wait for room: %v", err)
	case <-time.After(60 * time.Second): // a hang guard
		t.Fatal("an append past the bound neither waited nor ended in 60 s")
	}
	if _, err := holder.CloseAndRecv(); err != nil {
		t.Fatalf("the holder: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the append that waited: %v", err)
	}
	waitHeld(t, srv, 0)
}

// An append whose client never finishes it fails once the receive timeout
// is over, and lets its bytes go; so does a BatchAppend append whose final
// chunk never comes.
func TestUnfinishedAppendTimesOut(t *testing.T) {
	srv, conn := serveBudget(t, time.Hour, 50*time.Millisecond, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a hang guard
	defer cancel()
	call := openAppend(t, ctx, conn, 1)
	var resp streams.AppendResp
	if err := call.RecvMsg(&resp); status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "did not all arrive") {
		t.Fatalf("an append never finished: %v, want the server's DeadlineExceeded", err)
	}
	waitHeld(t, srv, 0)

	batch := openBatch(t, ctx, conn)
	cid := uuid.New()
	if err := batch.Send(&streams.BatchAppendReq{CorrelationId: correlation(cid), Options: batchOptions("order-1", "any"),
		ProposedMessages: batchEvents(uuid.New())}); err != nil {
		t.Fatal(err)
	}
	got, r := recvBatch(t, batch)
	if code, _ := errorDetail(t, r); got != cid || code != codes.DeadlineExceeded {
		t.Fatalf("a BatchAppend append never finished: %v %v, want its DeadlineExceeded", got, r)
	}
	waitHeld(t, srv, 0)
}
