package server_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// startRaw serves a fresh store and returns the store (to check what was
// written) and a raw gRPC connection, for requests no official client
// would send.
func startRaw(t *testing.T) (annals.Store, *grpc.ClientConn) {
	t.Helper()
	store, addr := serve(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return store, conn
}

func options(stream string) *streams.AppendReq {
	return &streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}}
}

func proposed(typ string, data []byte) *streams.AppendReq {
	return &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     data,
	}}}
}

// appendRaw sends msgs as one append and returns the outcome.
func appendRaw(ctx context.Context, conn *grpc.ClientConn, msgs ...*streams.AppendReq) (*streams.AppendResp, error) {
	call, err := streams.NewStreamsClient(conn).Append(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if err := call.Send(m); err != nil {
			break // the server answered early; CloseAndRecv has it
		}
	}
	return call.CloseAndRecv()
}

func countEvents(t *testing.T, store annals.Store) int {
	n := 0
	for _, err := range store.ReadAll(context.Background(), annals.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func TestBadRequests(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for _, tc := range []struct {
		name string
		msgs []*streams.AppendReq
		code codes.Code
	}{
		{"no options first", []*streams.AppendReq{proposed("A", []byte(`{}`))}, codes.InvalidArgument},
		{"options twice", []*streams.AppendReq{options("s"), options("s")}, codes.InvalidArgument},
		{"empty stream name", []*streams.AppendReq{options(""), proposed("A", []byte(`{}`))}, codes.InvalidArgument},
		{"reserved stream", []*streams.AppendReq{options("$s"), proposed("A", []byte(`{}`))}, codes.InvalidArgument},
		{"empty event type", []*streams.AppendReq{options("s"), proposed("", []byte(`{}`))}, codes.InvalidArgument},
		{"message over the size limit", []*streams.AppendReq{options("s"), proposed("A", make([]byte, server.MaxMessageBytes(annals.Limits{})+1))}, codes.ResourceExhausted},
		{"event over the size limit", []*streams.AppendReq{options("s"), proposed("A", make([]byte, annals.DefaultMaxEventSizeBytes+1))}, codes.InvalidArgument},
	} {
		_, err := appendRaw(ctx, conn, tc.msgs...)
		if status.Code(err) != tc.code {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.code)
		}
	}
	// Malformed reads: no options; options naming nothing to read; a
	// filter naming nothing; a regex that does not compile.
	all := func(f *streams.ReadReq_Options_FilterOptions) *streams.ReadReq_Options {
		return &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
				AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
			CountOption:  &streams.ReadReq_Options_Count{Count: 10},
			FilterOption: &streams.ReadReq_Options_Filter{Filter: f},
		}
	}
	for name, req := range map[string]*streams.ReadReq{
		"no options":      {},
		"nothing to read": {Options: &streams.ReadReq_Options{CountOption: &streams.ReadReq_Options_Count{Count: 1}}},
		"empty filter":    {Options: all(&streams.ReadReq_Options_FilterOptions{})},
		"bad regex": {Options: all(&streams.ReadReq_Options_FilterOptions{Filter: &streams.ReadReq_Options_FilterOptions_EventType{
			EventType: &streams.ReadReq_Options_FilterOptions_Expression{Regex: "("}}})},
	} {
		rs, err := streams.NewStreamsClient(conn).Read(ctx, req)
		if err == nil {
			_, err = rs.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("read with %s: got %v, want InvalidArgument", name, err)
		}
	}
	// A service Annals does not serve answers Unimplemented.
	err := conn.Invoke(ctx, "/event_store.client.projections.Projections/Statistics", &shared.Empty{}, &shared.Empty{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("an unserved service: got %v, want Unimplemented", err)
	}
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("bad requests wrote %d events", n)
	}
	// The server keeps serving.
	if _, err := appendRaw(ctx, conn, options("s"), proposed("A", []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, store); n != 1 {
		t.Fatalf("%d events after one good append", n)
	}
}

// A client that vanishes in the middle of an append writes nothing: the
// append only happens once the client has sent all of it.
func TestClientVanishesMidAppend(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithCancel(context.Background())
	call, err := streams.NewStreamsClient(conn).Append(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*streams.AppendReq{options("half"), proposed("A", []byte(`{}`)), proposed("B", []byte(`{}`))} {
		if err := call.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	cancel() // gone, without closing its side
	time.Sleep(200 * time.Millisecond)
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("a half-sent append wrote %d events", n)
	}
}

// Clients that subscribe, read and leave do not leave goroutines behind.
func TestNoGoroutineLeak(t *testing.T) {
	store, conn := startRaw(t)
	ctx := context.Background()
	if _, err := appendRaw(ctx, conn, options("s"), proposed("A", []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	const calls = 200
	for i := range calls {
		cctx, cancel := context.WithCancel(ctx)
		req := &streams.ReadReq{Options: &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
				AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
			CountOption:  &streams.ReadReq_Options_Count{Count: 10},
			FilterOption: &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		}}
		if i%2 == 0 { // half of them subscribe, and vanish while live
			req.Options.CountOption = &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}}
		}
		rs, err := streams.NewStreamsClient(conn).Read(cctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	after := settleGoroutines(before + 10)
	t.Logf("goroutines: %d before, %d after %d calls", before, after, calls)
	if after > before+10 {
		t.Fatalf("goroutines: %d before, %d after %d calls that ended", before, after, calls)
	}
	_ = store
}

// Thousands of idle connections neither stop the server nor hold it up.
// They come from three addresses other than the client's, each under
// MaxConnectionsPerAddress.
func TestThousandsOfIdleConnections(t *testing.T) {
	const idle = 2000
	_, addr := start(t)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range idle {
		c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%3))(context.Background(), addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	client := connect(t, addr)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if _, err := client.AppendToStream(ctx, "busy", kurrentdb.AppendToStreamOptions{}, event("Still", `{}`)); err != nil {
		t.Fatalf("with %d idle connections open: %v", idle, err)
	}
}
