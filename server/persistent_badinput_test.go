package server_test

import (
	"context"
	"testing"

	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func readOptions(stream, group string) *persistent.ReadReq {
	return &persistent.ReadReq{Content: &persistent.ReadReq_Options_{Options: &persistent.ReadReq_Options{
		StreamOption: &persistent.ReadReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}},
		GroupName:    group, BufferSize: 5,
	}}}
}

// readRaw sends msgs on a persistent Read and returns how the call ends
// (after a confirmation, if one comes) and its trailers.
func readRaw(t *testing.T, conn *grpc.ClientConn, msgs ...*persistent.ReadReq) (error, metadata.MD) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	call, err := persistent.NewPersistentSubscriptionsClient(conn).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := call.Send(m); err != nil {
			break
		}
	}
	for {
		if _, err := call.Recv(); err != nil {
			return err, call.Trailer()
		}
	}
}

func TestPersistentMalformedRequests(t *testing.T) {
	addr, _ := servePersistentAt(t, t.TempDir())
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ps := persistent.NewPersistentSubscriptionsClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	// No options at all, a create without settings, an unknown strategy.
	var info *persistent.GetInfoResp
	var md metadata.MD
	if _, err := ps.Create(ctx, &persistent.CreateReq{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty create: %v", err)
	}
	create := func(strategy string) *persistent.CreateReq {
		return &persistent.CreateReq{Options: &persistent.CreateReq_Options{
			StreamOption: &persistent.CreateReq_Options_Stream{Stream: &persistent.CreateReq_StreamOptions{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("s")},
				RevisionOption:   &persistent.CreateReq_StreamOptions_Start{Start: &shared.Empty{}},
			}},
			GroupName: "g",
			Settings: &persistent.CreateReq_Settings{MaxRetryCount: 10, LiveBufferSize: 10, ReadBatchSize: 10,
				HistoryBufferSize: 10, MaxCheckpointCount: 10, ConsumerStrategy: strategy},
		}}
	}
	if _, err := ps.Create(ctx, create("Random")); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown strategy: %v", err)
	}

	// Reads: a missing group, an ack before the options, a bad nack.
	err, md = readRaw(t, conn, readOptions("s", "g"))
	if status.Code(err) != codes.NotFound || len(md.Get("exception")) == 0 || md.Get("exception")[0] != "persistent-subscription-does-not-exist" {
		t.Fatalf("read of a missing group: %v %v", err, md)
	}
	if _, err := ps.Create(ctx, create("RoundRobin")); err != nil {
		t.Fatal(err)
	}
	ack := &persistent.ReadReq{Content: &persistent.ReadReq_Ack_{Ack: &persistent.ReadReq_Ack{}}}
	if err, _ := readRaw(t, conn, ack); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("ack before options: %v", err)
	}
	badID := &persistent.ReadReq{Content: &persistent.ReadReq_Nack_{Nack: &persistent.ReadReq_Nack{
		Ids: []*shared.UUID{{Value: &shared.UUID_String_{String_: "not-a-uuid"}}}, Action: persistent.ReadReq_Nack_Park}}}
	if err, _ := readRaw(t, conn, readOptions("s", "g"), badID); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("nack of a malformed id: %v", err)
	}
	badAction := &persistent.ReadReq{Content: &persistent.ReadReq_Nack_{Nack: &persistent.ReadReq_Nack{Action: 99}}}
	if err, _ := readRaw(t, conn, readOptions("s", "g"), badAction); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("nack with an unknown action: %v", err)
	}

	// The group is unharmed and has no consumer left.
	info, err = ps.GetInfo(ctx, &persistent.GetInfoReq{Options: &persistent.GetInfoReq_Options{
		StreamOption: &persistent.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("s")}},
		GroupName:    "g"}})
	if err != nil || len(info.GetSubscriptionInfo().GetConnections()) != 0 {
		t.Fatalf("info after bad reads: %v %v", err, info)
	}
}
