package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/annals/annals"
	v2errors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamsV2Server serves KurrentDB's protocol v2 StreamsService: the
// atomic multi-stream appends AppendSession (stream by stream, each with
// its expected revision) and AppendRecords (records interleaved across
// streams, with consistency checks on any stream), both over the store's
// AppendMulti. The records' bytes count against the appends in progress
// (budget.go) until the append is answered.
type streamsV2Server struct {
	v2.UnimplementedStreamsServiceServer
	store  annals.Store
	limits annals.Limits
	budget *appendBudget
}

// multiIn is a multi-stream append as received, with the bytes it holds.
type multiIn struct {
	m           annals.MultiAppend
	heldBytes   int // taken from the budget: records and stream names
	recordBytes int // the records', against MaxAppendSizeBytes
	err         error
}

// add appends one record to in, refusing it when it is over the limits
// (KurrentDB's size errors) and taking its bytes from the budget.
func (s *streamsV2Server) add(ctx context.Context, in *multiIn, stream string, r *v2.AppendRecord) error {
	e, err := recordToEvent(r)
	if err != nil {
		return err
	}
	size := annals.EventSizeBytes(&e)
	if size > s.limits.MaxEventSizeBytes {
		return recordTooLarge(stream, &e, size, s.limits.MaxEventSizeBytes)
	}
	if in.recordBytes+size > s.limits.MaxAppendSizeBytes {
		return transactionTooLarge(in.recordBytes+size, s.limits.MaxAppendSizeBytes, len(in.m.Records)+1)
	}
	if len(in.m.Records)+1 > s.limits.MaxAppendEvents {
		return v2BadRequest("AppendRequest", fmt.Sprintf("An append holds at most %d records.", s.limits.MaxAppendEvents))
	}
	if err := s.hold(ctx, in, size); err != nil {
		return err
	}
	in.recordBytes += size
	in.m.Records = append(in.m.Records, annals.Record{Stream: stream, Event: e})
	return nil
}

// hold takes n bytes from the budget for in.
func (s *streamsV2Server) hold(ctx context.Context, in *multiIn, n int) error {
	if err := s.budget.acquire(ctx, n); err != nil {
		st, _ := toStatus(err)
		return st
	}
	in.heldBytes += n
	return nil
}

// AppendRecords implements v2.StreamsServiceServer.
func (s *streamsV2Server) AppendRecords(ctx context.Context, req *v2.AppendRecordsRequest) (*v2.AppendRecordsResponse, error) {
	in := &multiIn{}
	defer func() { s.budget.release(in.heldBytes) }()
	if len(req.GetRecords()) == 0 {
		return nil, v2BadRequest("AppendRecordsRequest", "Append records request must contain at least one record.")
	}
	seen := map[string]bool{}
	for _, c := range req.GetChecks() {
		sc := c.GetStreamState()
		if sc == nil {
			return nil, v2BadRequest("AppendRecordsRequest", "Each consistency check must specify a type.")
		}
		if sc.GetStream() == "" {
			return nil, v2BadRequest("AppendRecordsRequest", "Stream must not be empty.")
		}
		if seen[sc.GetStream()] {
			return nil, v2BadRequest("AppendRecordsRequest", "Each stream can only appear once in consistency checks.")
		}
		seen[sc.GetStream()] = true
		expected, err := checkFromV2(sc.GetExpectedState())
		if err != nil {
			return nil, err
		}
		in.m.Checks = append(in.m.Checks, annals.StreamCheck{Stream: sc.GetStream(), Expected: expected})
	}
	named := map[string]bool{}
	for _, r := range req.GetRecords() {
		if r.GetStream() == "" {
			return nil, v2BadRequest("AppendRequest", "Stream must not be empty.")
		}
		if !named[r.GetStream()] {
			if err := s.limits.CheckWritableStream(r.GetStream()); err != nil {
				return nil, v2BadRequest("AppendRequest", err.Error())
			}
			named[r.GetStream()] = true
		}
		if err := s.add(ctx, in, r.GetStream(), r); err != nil {
			return nil, err
		}
	}
	res, err := s.store.AppendMulti(ctx, in.m)
	if err != nil {
		return nil, s.multiError(ctx, err, consistencyViolation)
	}
	out := &v2.AppendRecordsResponse{Position: int64(res.LastPosition)}
	for _, r := range res.Streams {
		rev, _ := r.NextExpected.Revision()
		out.Revisions = append(out.Revisions, &v2.StreamRevision{Stream: r.Stream, Revision: int64(rev)})
	}
	return out, nil
}

// multiError maps the store's error of a multi-stream append: failed
// checks as the method answers them (conflict), the rest as the v1
// services do.
func (s *streamsV2Server) multiError(ctx context.Context, err error, conflict func(*annals.ConsistencyError) error) error {
	var ce *annals.ConsistencyError
	if errors.As(err, &ce) && len(ce.Violations) > 0 {
		return conflict(ce)
	}
	var invalid *annals.InvalidInputError
	if errors.As(err, &invalid) {
		return v2BadRequest("AppendRequest", invalid.Error())
	}
	return unaryError(ctx, err)
}

// AppendSession implements v2.StreamsServiceServer: it reads the
// session's requests within the receive timeout, then appends them all.
func (s *streamsV2Server) AppendSession(stream grpc.ClientStreamingServer[v2.AppendRequest, v2.AppendSessionResponse]) error {
	ctx := stream.Context()
	received := make(chan *multiIn, 1)
	go func() { received <- s.receiveSession(stream) }()
	timer := time.NewTimer(s.budget.lim.receiveTimeout)
	defer timer.Stop()
	var in *multiIn
	select {
	case in = <-received:
	case <-timer.C:
		go func() { s.budget.release((<-received).heldBytes) }()
		return status.Errorf(codes.DeadlineExceeded, "the session's requests did not all arrive within %s", s.budget.lim.receiveTimeout)
	}
	defer s.budget.release(in.heldBytes)
	if in.err != nil {
		return in.err
	}
	res, err := s.store.AppendMulti(ctx, in.m)
	if err != nil {
		return s.multiError(ctx, err, sessionConflict)
	}
	out := &v2.AppendSessionResponse{Position: int64(res.LastPosition)}
	for _, r := range res.Streams {
		rev, _ := r.NextExpected.Revision()
		out.Output = append(out.Output, &v2.AppendResponse{Stream: r.Stream, StreamRevision: int64(rev)})
	}
	return stream.SendAndClose(out)
}

// receiveSession reads a session's requests into one multi-stream append:
// each stream once, its records together, its expected revision a check.
func (s *streamsV2Server) receiveSession(stream grpc.ClientStreamingServer[v2.AppendRequest, v2.AppendSessionResponse]) *multiIn {
	in := &multiIn{}
	seen := map[string]bool{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			in.err = err // the client went away: nothing was written
			return in
		}
		if in.err = s.sessionRequest(stream.Context(), in, seen, req); in.err != nil {
			return in
		}
	}
	if len(seen) == 0 {
		in.err = v2Error(codes.FailedPrecondition, "APPEND_SESSION_NO_REQUESTS", "streams",
			"Append session started, but no append requests were sent before ending the session.", nil)
	}
	return in
}

func (s *streamsV2Server) sessionRequest(ctx context.Context, in *multiIn, seen map[string]bool, req *v2.AppendRequest) error {
	name := req.GetStream()
	switch {
	case name == "":
		return v2BadRequest("AppendRequest", "Stream must not be empty.")
	case len(req.GetRecords()) == 0:
		return v2BadRequest("AppendRequest", "Stream append request must contain at least one record")
	case seen[name]:
		return v2Error(codes.Aborted, "STREAM_ALREADY_IN_APPEND_SESSION", "streams",
			fmt.Sprintf("Stream '%s' already has a different group of messages in this session. Appends for the same stream must currently be grouped together and not interleaved with appends for other streams.", name),
			&v2errors.StreamAlreadyInAppendSessionErrorDetails{Stream: name})
	}
	if err := s.limits.CheckWritableStream(name); err != nil {
		return v2BadRequest("AppendRequest", err.Error())
	}
	if len(seen) >= s.limits.MaxAppendStreams {
		return v2BadRequest("AppendRequest", fmt.Sprintf("A session appends to at most %d streams.", s.limits.MaxAppendStreams))
	}
	expected, err := expectedFromV2(req.ExpectedRevision)
	if err != nil {
		return err
	}
	// The name is held until the session ends: it counts as its bytes.
	if err := s.hold(ctx, in, len(name)); err != nil {
		return err
	}
	seen[name] = true
	if !expected.IsAny() {
		in.m.Checks = append(in.m.Checks, annals.StreamCheck{Stream: name, Expected: expected})
	}
	for _, r := range req.GetRecords() {
		if err := s.add(ctx, in, name, r); err != nil {
			return err
		}
	}
	return nil
}
