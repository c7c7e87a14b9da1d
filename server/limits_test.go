package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// An Append call the client closes before sending anything is a bad
// request, not an unknown error.
func TestAppendWithoutMessages(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := appendRaw(ctx, conn); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an append with no message: got %v, want InvalidArgument", err)
	}
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("%d events written", n)
	}
}

// appendTrailers sends msgs as one append and returns its error and
// trailers.
func appendTrailers(t *testing.T, ctx context.Context, call streams.Streams_AppendClient, msgs []*streams.AppendReq) (error, metadata.MD) {
	t.Helper()
	for _, m := range msgs {
		if err := call.Send(m); err != nil {
			break
		}
	}
	_, err := call.CloseAndRecv()
	return err, call.Trailer()
}

// An append over a limit (bytes, or events) is one typed error on Append
// and on BatchAppend: maximum-append-size-exceeded with its
// maximum-append-size trailer (the Node client's error constructor throws
// without it), and MaximumAppendSizeExceeded in a BatchAppend response.
func TestAppendOverLimitsTrailers(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Nine events just under the event limit pass the append limit.
	tooBig := []*streams.AppendReq{options("big")}
	var tooBigBatch []*streams.BatchAppendReq_ProposedMessage
	for range annals.DefaultMaxAppendSizeBytes/annals.DefaultMaxEventSizeBytes + 1 {
		m := proposed("A", make([]byte, annals.DefaultMaxEventSizeBytes-1024))
		tooBig = append(tooBig, m)
		tooBigBatch = append(tooBigBatch, batchMessage(m.GetProposedMessage()))
	}
	tooMany := []*streams.AppendReq{options("many")}
	var tooManyBatch []*streams.BatchAppendReq_ProposedMessage
	for range annals.DefaultMaxAppendEvents + 1 {
		m := proposed("A", []byte(`{}`))
		tooMany = append(tooMany, m)
		tooManyBatch = append(tooManyBatch, batchMessage(m.GetProposedMessage()))
	}
	wantSize := strconv.Itoa(annals.DefaultMaxAppendSizeBytes)
	for name, msgs := range map[string][]*streams.AppendReq{"bytes": tooBig, "events": tooMany} {
		call, err := streams.NewStreamsClient(conn).Append(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err, md := appendTrailers(t, ctx, call, msgs)
		if status.Code(err) != codes.InvalidArgument || first(md, "exception") != "maximum-append-size-exceeded" || first(md, "maximum-append-size") != wantSize {
			t.Errorf("Append over the %s limit: %v, trailers %v", name, err, md)
		}
	}
	batch := openBatch(t, ctx, conn)
	for name, msgs := range map[string][]*streams.BatchAppendReq_ProposedMessage{"bytes": tooBigBatch, "events": tooManyBatch} {
		// In chunks, each under the receive limit.
		cid, n := correlation(uuid.New()), max(1, annals.DefaultMaxEventSizeBytes/(2*len(msgs[0].GetData())+64))
		for i := 0; i < len(msgs); i += n {
			req := &streams.BatchAppendReq{CorrelationId: cid, ProposedMessages: msgs[i:min(i+n, len(msgs))], IsFinal: i+n >= len(msgs)}
			if i == 0 {
				req.Options = batchOptions(name, "any")
			}
			if err := batch.Send(req); err != nil {
				t.Fatal(err)
			}
		}
		_, resp := recvBatch(t, batch)
		c, d := errorDetail(t, resp)
		if m, ok := d.(*shared.MaximumAppendSizeExceeded); c != codes.InvalidArgument || !ok || m.GetMaxAppendSize() != uint32(annals.DefaultMaxAppendSizeBytes) {
			t.Errorf("BatchAppend over the %s limit: %v %v", name, c, d)
		}
	}
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("%d events written", n)
	}
}

func batchMessage(m *streams.AppendReq_ProposedMessage) *streams.BatchAppendReq_ProposedMessage {
	return &streams.BatchAppendReq_ProposedMessage{Id: m.GetId(), Metadata: m.GetMetadata(), Data: m.GetData()}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// The Node and .NET clients send a whole append as one BatchAppend
// message: one of 1.4 MB (over the 1 MiB event limit, within the 8 MiB
// append limit) is taken and written.
func TestBatchAppendOneMessageOverEventLimit(t *testing.T) {
	store, conn := startRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var msgs []*streams.BatchAppendReq_ProposedMessage
	for range 2 {
		msgs = append(msgs, batchMessage(proposed("Big", make([]byte, 700_000)).GetProposedMessage()))
	}
	call := openBatch(t, ctx, conn)
	if err := call.Send(&streams.BatchAppendReq{CorrelationId: correlation(uuid.New()), Options: batchOptions("big", "no_stream"), ProposedMessages: msgs, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	if _, resp := recvBatch(t, call); resp.GetSuccess().GetCurrentRevision() != 1 {
		t.Fatalf("a 1.4 MB append in one message: %v", resp)
	}
	if n := countEvents(t, store); n != 2 {
		t.Fatalf("%d events written, want 2", n)
	}
}
