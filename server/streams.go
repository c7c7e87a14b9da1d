package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/annals/annals"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamsServer serves KurrentDB's Streams service from a store.
type streamsServer struct {
	streams.UnimplementedStreamsServer
	store  annals.Store
	limits annals.Limits
	// stopping is cancelled when the server shuts down: subscriptions end.
	stopping context.Context
	logger   *slog.Logger
	budget   *appendBudget
}

// Append reads the options, then the proposed events, and appends them in
// one atomic append. A wrong expected revision goes back in the response
// body, in both the old and the new fields, as KurrentDB sends it. The
// events' bytes count against the server's appends in progress
// (budget.go) until the append is answered; an append whose messages do
// not all arrive within the receive timeout fails.
func (s *streamsServer) Append(stream grpc.ClientStreamingServer[streams.AppendReq, streams.AppendResp]) error {
	ctx := stream.Context()
	received := make(chan receivedAppend, 1)
	go func() { received <- s.receiveAppend(stream) }()
	timer := time.NewTimer(s.budget.lim.receiveTimeout)
	defer timer.Stop()
	var in receivedAppend
	select {
	case in = <-received:
	case <-timer.C:
		// The receiver ends once the call has: its bytes go then.
		go func() { s.budget.release((<-received).heldBytes) }()
		return status.Errorf(codes.DeadlineExceeded, "the append's messages did not all arrive within %s", s.budget.lim.receiveTimeout)
	}
	defer s.budget.release(in.heldBytes)
	if in.err != nil {
		return in.err
	}
	name, exp, events := in.stream, in.expected, in.events
	res, err := s.store.Append(ctx, name, exp, events...)
	var wrong *annals.WrongExpectedRevisionError
	if errors.As(err, &wrong) {
		return stream.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{
			WrongExpectedVersion: wrongExpectedToProto(wrong)}})
	}
	if err != nil {
		return s.appendError(stream, err)
	}
	ok := &streams.AppendResp_Success{}
	if r, exact := res.NextExpected.Revision(); exact {
		ok.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(r)}
	} else {
		ok.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	}
	if res.LastPosition > 0 {
		ok.PositionOption = &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{
			CommitPosition: uint64(res.LastPosition), PreparePosition: uint64(res.LastPosition)}}
	} else {
		ok.PositionOption = &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	}
	return stream.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_Success_{Success: ok}})
}

// receivedAppend is an Append call's request, or why it is refused.
type receivedAppend struct {
	stream    string
	expected  annals.ExpectedRevision
	events    []annals.EventData
	heldBytes int // taken from the budget, whatever err
	err       error
}

// receiveAppend reads an Append call's messages, taking their bytes from
// the budget.
func (s *streamsServer) receiveAppend(stream grpc.ClientStreamingServer[streams.AppendReq, streams.AppendResp]) (r receivedAppend) {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		r.err = status.Error(codes.InvalidArgument, "an append must begin with a message carrying its options")
		return r
	}
	if err != nil {
		r.err = err
		return r
	}
	opts := first.GetOptions()
	if opts == nil {
		r.err = status.Error(codes.InvalidArgument, "the first append message must carry the options")
		return r
	}
	r.stream = string(opts.GetStreamIdentifier().GetStreamName())
	if r.expected, err = expected(opts, opts.GetExpectedStreamRevision() != nil); err != nil {
		r.err = invalidArgument(err)
		return r
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			r.err = err // the client went away: nothing was written
			return r
		}
		m := msg.GetProposedMessage()
		if m == nil {
			r.err = status.Error(codes.InvalidArgument, "after the options, an append carries only proposed messages")
			return r
		}
		ev, err := proposedToEvent(m)
		if err != nil {
			r.err = invalidArgument(err)
			return r
		}
		size := annals.EventSizeBytes(&ev)
		if err := appendTooLarge(s.limits, len(r.events)+1, r.heldBytes+size); err != nil {
			// Stop reading: the append can never be written.
			r.err = s.appendError(stream, err)
			return r
		}
		if err := s.budget.acquire(stream.Context(), size); err != nil {
			r.err = unaryStreamError(stream, err)
			return r
		}
		r.heldBytes += size
		r.events = append(r.events, ev)
	}
}

func wrongExpectedToProto(w *annals.WrongExpectedRevisionError) *streams.AppendResp_WrongExpectedVersion {
	out := &streams.AppendResp_WrongExpectedVersion{}
	if r, ok := w.Actual.Revision(); ok {
		out.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(r)}
		out.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(r)}
	} else {
		out.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
		out.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
	}
	e := w.Expected
	switch r, exact := e.Revision(); {
	case exact:
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(r)}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(r)}
	case e.IsNoStream():
		// The old fields have no "no stream": KurrentDB leaves them unset.
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case e.IsStreamExists():
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	}
	return out
}

// appendTooLarge is the error of an append of count events and size
// bytes over the store's limits, nil within them: the same error on Append
// and BatchAppend, before the events reach the store.
func appendTooLarge(lim annals.Limits, count, size int) error {
	if count <= lim.MaxAppendEvents && size <= lim.MaxAppendSizeBytes {
		return nil
	}
	return &annals.InvalidInputError{Field: "events", TooLarge: true,
		Reason: fmt.Sprintf("the append is over %d events or %d bytes", lim.MaxAppendEvents, lim.MaxAppendSizeBytes)}
}

// appendError is unaryStreamError for an append: one over a limit also
// carries the maximum-append-size trailer, as KurrentDB sends it (the Node
// client's error constructor reads it unchecked: without it the client
// throws inside a gRPC callback).
func (s *streamsServer) appendError(stream grpc.ServerStream, err error) error {
	st, md := toStatus(err)
	var invalid *annals.InvalidInputError
	if errors.As(err, &invalid) && invalid.TooLarge {
		md.Set(trailerMaxAppendSize, strconv.Itoa(s.limits.MaxAppendSizeBytes))
	}
	if md != nil {
		stream.SetTrailer(md)
	}
	return st
}

// unaryStreamError sets err's trailers on a streaming call and returns its
// status.
func unaryStreamError(stream grpc.ServerStream, err error) error {
	st, md := toStatus(err)
	if md != nil {
		stream.SetTrailer(md)
	}
	return st
}

// Delete soft-deletes a stream.
func (s *streamsServer) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	opts := req.GetOptions()
	exp, err := expected(opts, opts.GetExpectedStreamRevision() != nil)
	if err != nil {
		return nil, invalidArgument(err)
	}
	res, err := s.store.Delete(ctx, string(opts.GetStreamIdentifier().GetStreamName()), exp)
	if err != nil {
		return nil, unaryError(ctx, err)
	}
	pos := s.deletePosition(ctx, res)
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{Position: &streams.DeleteResp_Position{CommitPosition: uint64(pos), PreparePosition: uint64(pos)}}}, nil
}

// Tombstone deletes a stream forever.
func (s *streamsServer) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	opts := req.GetOptions()
	exp, err := expected(opts, opts.GetExpectedStreamRevision() != nil)
	if err != nil {
		return nil, invalidArgument(err)
	}
	res, err := s.store.Tombstone(ctx, string(opts.GetStreamIdentifier().GetStreamName()), exp)
	if err != nil {
		return nil, unaryError(ctx, err)
	}
	pos := s.deletePosition(ctx, res)
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{Position: &streams.TombstoneResp_Position{CommitPosition: uint64(pos), PreparePosition: uint64(pos)}}}, nil
}

// deletePosition is the position a delete answers with. KurrentDB's
// deletes always write, so the official Go client dereferences the
// position without a check and panics on NoPosition. An Annals delete of a
// stream holding only metadata writes nothing: it answers the head of
// $all, the point of the log at which the stream reads as deleted.
func (s *streamsServer) deletePosition(ctx context.Context, res annals.DeleteResult) annals.Position {
	if res.Position > 0 {
		return res.Position
	}
	for e, err := range s.store.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if err == nil {
			return e.Position
		}
	}
	return 0
}
