package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The official Go client never sends BatchAppend (the .NET and Node
// clients do when it is advertised): these tests speak it with the
// generated client, as those clients do.

type batchCall = grpc.BidiStreamingClient[streams.BatchAppendReq, streams.BatchAppendResp]

func openBatch(t *testing.T, ctx context.Context, conn *grpc.ClientConn) batchCall {
	t.Helper()
	call, err := streams.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return call
}

func batchOptions(stream string, expected any) *streams.BatchAppendReq_Options {
	o := &streams.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	switch e := expected.(type) {
	case uint64:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamPosition{StreamPosition: e}
	case string:
		switch e {
		case "no_stream":
			o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
		case "any":
			o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}
		}
	}
	return o
}

func batchEvents(ids ...uuid.UUID) []*streams.BatchAppendReq_ProposedMessage {
	out := make([]*streams.BatchAppendReq_ProposedMessage, len(ids))
	for i, id := range ids {
		out[i] = &streams.BatchAppendReq_ProposedMessage{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
			Metadata: map[string]string{"type": "Booked", "content-type": "application/json"},
			Data:     []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
	}
	return out
}

func correlation(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
}

// send sends one whole append as a single final chunk.
func send(t *testing.T, call batchCall, cid uuid.UUID, o *streams.BatchAppendReq_Options, ids ...uuid.UUID) {
	t.Helper()
	if err := call.Send(&streams.BatchAppendReq{CorrelationId: correlation(cid), Options: o, ProposedMessages: batchEvents(ids...), IsFinal: true}); err != nil {
		t.Fatal(err)
	}
}

func recvBatch(t *testing.T, call batchCall) (uuid.UUID, *streams.BatchAppendResp) {
	t.Helper()
	resp, err := call.Recv()
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(resp.GetCorrelationId().GetString_())
	if err != nil {
		t.Fatalf("correlation id %v: %v", resp.GetCorrelationId(), err)
	}
	return id, resp
}

// Many appends pipelined on one call: every one answered once, by its
// correlation id; appends to one stream written in the order sent.
func TestBatchAppendPipelined(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	call := openBatch(t, ctx, conn)
	const streamsN, perStream = 20, 15
	sent := map[uuid.UUID]string{}
	order := map[string][]uuid.UUID{} // event ids per stream, in the order sent
	for i := range streamsN * perStream {
		name := fmt.Sprintf("pipe-%d", i%streamsN)
		cid, eid := uuid.New(), uuid.New()
		send(t, call, cid, batchOptions(name, "any"), eid)
		sent[cid] = name
		order[name] = append(order[name], eid)
	}
	if err := call.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for range len(sent) {
		cid, resp := recvBatch(t, call)
		name, ok := sent[cid]
		if !ok {
			t.Fatalf("a response for an unknown or already answered correlation id %v", cid)
		}
		delete(sent, cid)
		if resp.GetSuccess() == nil || resp.GetSuccess().GetPosition() == nil {
			t.Fatalf("append to %s: %v", name, resp)
		}
		if string(resp.GetStreamIdentifier().GetStreamName()) != name || resp.GetAny() == nil {
			t.Fatalf("the response does not echo the stream and expectation: %v", resp)
		}
	}
	if _, err := call.Recv(); err == nil {
		t.Fatal("the call went on after every append was answered and the client closed")
	}
	for name, ids := range order {
		var got []uuid.UUID
		for e, err := range store.ReadStream(ctx, name, annals.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Fatalf("%s holds %v, sent in the order %v", name, got, ids)
		}
	}
}

// An append sent in chunks is invisible until its final chunk, then
// written at once.
func TestBatchAppendChunks(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	call := openBatch(t, ctx, conn)
	cid := uuid.New()
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for i, id := range ids {
		req := &streams.BatchAppendReq{CorrelationId: correlation(cid), ProposedMessages: batchEvents(id), IsFinal: i == len(ids)-1}
		if i == 0 {
			req.Options = batchOptions("chunked", "no_stream")
		}
		if err := call.Send(req); err != nil {
			t.Fatal(err)
		}
		if i < len(ids)-1 {
			time.Sleep(50 * time.Millisecond)
			if n := countEvents(t, store); n != 0 {
				t.Fatalf("%d events visible before the final chunk", n)
			}
		}
	}
	_, resp := recvBatch(t, call)
	if r := resp.GetSuccess().GetCurrentRevision(); resp.GetSuccess() == nil || r != 2 {
		t.Fatalf("chunked append: %v", resp)
	}
	if n := countEvents(t, store); n != 3 {
		t.Fatalf("%d events after the final chunk, want 3", n)
	}
}

// errorDetail returns the response's error code and its detail message.
func errorDetail(t *testing.T, resp *streams.BatchAppendResp) (codes.Code, proto.Message) {
	t.Helper()
	st := resp.GetError()
	if st == nil {
		t.Fatalf("want an error, got %v", resp)
	}
	if len(st.GetDetails()) != 1 {
		t.Fatalf("error %v: want one detail", st)
	}
	d, err := st.GetDetails()[0].UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	return codes.Code(st.GetCode()), d
}

// Each append's error comes back in its own response, as KurrentDB sends
// it; the call goes on.
func TestBatchAppendErrors(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	bookedID := uuid.New()
	if _, err := store.Append(ctx, "booked", annals.NoStream, annals.EventData{ID: bookedID, Type: "Booked", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Tombstone(ctx, "gone", annals.Any); err != nil {
		t.Fatal(err)
	}
	call := openBatch(t, ctx, conn)

	send(t, call, uuid.New(), batchOptions("booked", uint64(5)), uuid.New())
	_, resp := recvBatch(t, call)
	c, d := errorDetail(t, resp)
	w, ok := d.(*shared.WrongExpectedVersion)
	if c != codes.FailedPrecondition || !ok || w.GetCurrentStreamRevision() != 0 || w.GetExpectedStreamPosition() != 5 {
		t.Fatalf("stale append: %v %v", c, d)
	}

	send(t, call, uuid.New(), batchOptions("gone", "any"), uuid.New())
	_, resp = recvBatch(t, call)
	if c, d := errorDetail(t, resp); c != codes.FailedPrecondition || string(d.(*shared.StreamDeleted).GetStreamIdentifier().GetStreamName()) != "gone" {
		t.Fatalf("append to a tombstoned stream: %v %v", c, d)
	}

	send(t, call, uuid.New(), batchOptions("booked", uint64(0)), bookedID)
	_, resp = recvBatch(t, call)
	if c, d := errorDetail(t, resp); c != codes.AlreadyExists {
		t.Fatalf("an event id recorded at another place of its stream: %v %v", c, d)
	}

	big := batchEvents(uuid.New())
	big[0].Data = []byte(`"` + strings.Repeat("x", annals.DefaultMaxEventSizeBytes) + `"`)
	cid := uuid.New()
	if err := call.Send(&streams.BatchAppendReq{CorrelationId: correlation(cid), Options: batchOptions("big", "any"), ProposedMessages: big, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	_, resp = recvBatch(t, call)
	if c, d := errorDetail(t, resp); c != codes.InvalidArgument {
		t.Fatalf("oversized event: %v %v", c, d)
	}

	// Malformed appends: no expectation; chunks with no options; a
	// reserved stream name; a deadline already passed.
	for name, req := range map[string]*streams.BatchAppendReq{
		"no expectation": {Options: batchOptions("x", nil), ProposedMessages: batchEvents(uuid.New()), IsFinal: true},
		"no options":     {ProposedMessages: batchEvents(uuid.New()), IsFinal: true},
		"reserved name":  {Options: batchOptions("$system", "any"), ProposedMessages: batchEvents(uuid.New()), IsFinal: true},
	} {
		req.CorrelationId = correlation(uuid.New())
		if err := call.Send(req); err != nil {
			t.Fatal(err)
		}
		_, resp := recvBatch(t, call)
		if c, d := errorDetail(t, resp); c != codes.InvalidArgument {
			t.Fatalf("%s: %v %v", name, c, d)
		}
	}
	late := batchOptions("late", "any")
	late.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(-time.Second)}
	send(t, call, uuid.New(), late, uuid.New())
	_, resp = recvBatch(t, call)
	if c, d := errorDetail(t, resp); c != codes.DeadlineExceeded {
		t.Fatalf("a passed deadline: %v %v", c, d)
	}

	// The call still appends, and a retry of the same events is answered
	// with the first append's place, writing nothing.
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	for range 2 {
		send(t, call, uuid.New(), batchOptions("booked", uint64(0)), ids...)
		_, resp = recvBatch(t, call)
		if resp.GetSuccess().GetCurrentRevision() != 2 {
			t.Fatalf("append after errors: %v", resp)
		}
	}
	if n := countEvents(t, store); n != 4 { // booked ×3 and the tombstone
		t.Fatalf("%d events in $all, want 4", n)
	}

	// Without a correlation id the call itself is malformed: it ends.
	if err := call.Send(&streams.BatchAppendReq{Options: batchOptions("x", "any"), IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no correlation id: %v", err)
	}
}

// A client that leaves mid-append writes nothing and leaves no goroutine.
func TestBatchAppendClientVanishes(t *testing.T) {
	store, conn := startRaw(t)
	before := runtime.NumGoroutine()
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		call := openBatch(t, ctx, conn)
		if err := call.Send(&streams.BatchAppendReq{CorrelationId: correlation(uuid.New()), Options: batchOptions("half", "any"),
			ProposedMessages: batchEvents(uuid.New()), IsFinal: false}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	after := settleGoroutines(before + 10)
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("appends never finished wrote %d events", n)
	}
	if after > before+10 {
		t.Fatalf("goroutines: %d before, %d after 50 calls that ended", before, after)
	}
}
