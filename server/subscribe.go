package server

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// defaultSearchWindow is the search window of a filtered subscription
// that names none (the "count" window): KurrentDB's read batch of 32
// events, which its checkpoint interval multiplies.
const defaultSearchWindow = 32

// subscribe serves a Read with the subscription option: a confirmation,
// then the history, a caught-up message, and live events until the client
// goes or the server stops. KurrentDB subscriptions start after the
// revision or position given (wireFrom.after).
func (s *streamsServer) subscribe(opts *streams.ReadReq_Options, stream grpc.ServerStreamingServer[streams.ReadResp], uuidAsString bool) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(s.stopping, cancel) // Shutdown ends subscriptions
	defer stop()

	var msgs iter.Seq2[annals.Message, error]
	switch {
	case opts.GetStream() != nil:
		so := opts.GetStream()
		msgs = s.store.SubscribeToStream(ctx, string(so.GetStreamIdentifier().GetStreamName()), annals.SubscribeStreamOptions{From: streamFrom(so).after()})
	case opts.GetAll() != nil:
		from := allFrom(opts.GetAll()).after()
		filter, err := filterFromProto(opts.GetFilter())
		if err != nil {
			return invalidArgument(err)
		}
		var interval uint64
		if f := opts.GetFilter(); f != nil {
			// KurrentDB checkpoints every window × multiplier events read.
			window := uint64(defaultSearchWindow)
			if f.GetMax() > 0 {
				window = uint64(f.GetMax())
			}
			interval = window * uint64(max(f.GetCheckpointIntervalMultiplier(), 1))
		}
		msgs = s.store.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: from, Filter: filter, CheckpointEveryEvents: interval})
	default:
		return invalidArgument(errors.New("read options name neither a stream nor $all"))
	}

	if err := stream.Send(&streams.ReadResp{Content: &streams.ReadResp_Confirmation{
		Confirmation: &streams.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	for m, err := range msgs {
		if err != nil {
			switch {
			case s.stopping.Err() != nil:
				return status.Error(codes.Unavailable, "the server is shutting down")
			case ctx.Err() != nil:
				// The client left, or its deadline passed: say which, so a
				// client never takes the end for a clean one.
				return status.FromContextError(ctx.Err()).Err()
			}
			return unaryStreamError(stream, err)
		}
		var resp *streams.ReadResp
		switch m.Kind {
		case annals.MessageEvent:
			resp = &streams.ReadResp{Content: &streams.ReadResp_Event{Event: recordedToProto(&m.Event, uuidAsString)}}
		case annals.MessageCheckpoint:
			resp = &streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{Checkpoint: &streams.ReadResp_Checkpoint{
				CommitPosition: uint64(m.Position), PreparePosition: uint64(m.Position), Timestamp: timestamppb.New(time.Now())}}}
		case annals.MessageCaughtUp:
			resp = &streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: &streams.ReadResp_CaughtUp{
				Timestamp: timestamppb.New(time.Now()),
				Position:  &streams.ReadResp_Position{CommitPosition: uint64(m.Position), PreparePosition: uint64(m.Position)}}}}
		default:
			continue
		}
		if err := stream.Send(resp); err != nil {
			return err // the client went away
		}
	}
	return nil
}
