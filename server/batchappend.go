package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Limits of one BatchAppend call. A BatchAppend call is a long-lived stream
// carrying many appends, each named by a correlation id and sent in one or
// more chunks (the last one marked final). The call holds the chunks of
// appends not yet final, and the events of appends in flight.
const (
	// BatchAppendInFlightMax bounds the appends one call runs at once; at
	// the bound the call stops reading (gRPC flow control then holds the
	// client) until one finishes.
	BatchAppendInFlightMax = 256
	// BatchAppendPendingMax bounds the appends of one call whose final
	// chunk has not come yet. One more is refused with BadRequest.
	BatchAppendPendingMax = 64
	// BatchAppendBytesMax bounds the event bytes one call holds, pending
	// and in flight. Reading waits for appends in flight to finish; if
	// only pending chunks hold the bytes, the chunk that would pass the
	// bound fails its append.
	BatchAppendBytesMax = 64 << 20
)

// BatchAppend serves KurrentDB's pipelined append: appends arrive on one
// stream and are answered as they complete, each response carrying its
// request's correlation id. Appends of one call run concurrently, except
// that appends to the same stream run in the order their final chunks
// arrived, so a client pipelining appends to one stream sees them written
// in the order it sent them. Each append is atomic and has the same
// expected-revision and idempotency semantics as Append. Errors of one
// append go back in its response (a google.rpc.Status with KurrentDB's
// detail message); only a malformed call (no correlation id) or a client
// gone ends the call.
func (s *streamsServer) BatchAppend(call grpc.BidiStreamingServer[streams.BatchAppendReq, streams.BatchAppendResp]) error {
	ctx, cancel := context.WithCancel(call.Context())
	defer cancel()
	stop := context.AfterFunc(s.stopping, cancel)
	defer stop()
	b := &batchCall{s: s, call: call, ctx: ctx, cancel: cancel,
		pending: make(map[string]*pendingAppend), tails: make(map[string]chan struct{}),
		slots: make(chan struct{}, BatchAppendInFlightMax)}
	b.bytesFreed = sync.NewCond(&b.mu)
	err := b.serve()
	if err != nil {
		cancel() // a clean end (the client closed its side) lets appends in flight finish and answer
	}
	for _, p := range b.pending {
		b.release(p.sizeBytes, false) // never final: never written
	}
	b.running.Wait()
	if sendErr := b.sendFailure(); sendErr != nil && err == nil {
		err = sendErr
	}
	return err
}

// batchCall is the state of one BatchAppend call.
type batchCall struct {
	s      *streamsServer
	call   grpc.BidiStreamingServer[streams.BatchAppendReq, streams.BatchAppendResp]
	ctx    context.Context
	cancel context.CancelFunc

	// pending holds appends whose final chunk has not come, by correlation
	// id. Only the receiving goroutine touches it.
	pending map[string]*pendingAppend
	slots   chan struct{} // one per append in flight
	running sync.WaitGroup

	mu sync.Mutex
	// tails holds, per stream, a channel closed when the call's last
	// append to that stream finishes: the next one waits for it.
	tails      map[string]chan struct{}
	heldBytes  int // event bytes of pending and in-flight appends
	flyBytes   int // the part of heldBytes in flight
	bytesFreed *sync.Cond

	sendMu  sync.Mutex // gRPC allows one sender at a time
	sendErr error
}

// pendingAppend is one append being received.
type pendingAppend struct {
	correlation *shared.UUID
	stream      string
	options     *streams.BatchAppendReq_Options
	expected    annals.ExpectedRevision
	deadline    time.Time // zero: none
	arrived     time.Time // its first chunk
	events      []annals.EventData
	sizeBytes   int
	failed      bool // answered with an error; later chunks are dropped
}

// received is one Recv's outcome.
type received struct {
	req *streams.BatchAppendReq
	err error
}

// serve takes the call's chunks as they come, and fails the appends whose
// final chunk has not come within the receive timeout of their first.
func (b *batchCall) serve() error {
	reqs := make(chan received)
	go func() {
		for {
			req, err := b.call.Recv()
			select {
			case reqs <- received{req, err}:
			case <-b.ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(b.untilExpiry())
		var r received
		select {
		case r = <-reqs:
		case <-timer.C:
			b.expire()
			continue
		case <-b.ctx.Done():
			return status.FromContextError(b.ctx.Err()).Err()
		}
		if errors.Is(r.err, io.EOF) {
			return nil
		}
		if r.err != nil {
			return r.err // the client went away; appends in flight finish or are cancelled
		}
		if err := b.receive(r.req); err != nil {
			return err
		}
	}
}

// untilExpiry is the time until the oldest pending append's receive
// timeout ends (an hour if none is pending).
func (b *batchCall) untilExpiry() time.Duration {
	next := time.Hour
	for _, p := range b.pending {
		next = min(next, time.Until(p.arrived.Add(b.s.budget.lim.receiveTimeout)))
	}
	return max(next, 0)
}

// expire fails the pending appends whose receive timeout is over; their
// later chunks are taken as chunks of an append never begun.
func (b *batchCall) expire() {
	timeout := b.s.budget.lim.receiveTimeout
	for key, p := range b.pending {
		if time.Since(p.arrived) >= timeout {
			b.fail(p, fmt.Errorf("%w: the append's chunks did not all arrive within %s", context.DeadlineExceeded, timeout))
			delete(b.pending, key)
		}
	}
}

// receive takes one chunk. It returns an error only when the call must end.
func (b *batchCall) receive(req *streams.BatchAppendReq) error {
	cid, err := uuidFromProto(req.GetCorrelationId())
	if err != nil || req.GetCorrelationId() == nil {
		return status.Error(codes.InvalidArgument, "every BatchAppend request must carry a correlation id")
	}
	key := cid.String()
	p := b.pending[key]
	switch {
	case p == nil && req.GetOptions() == nil:
		// Chunks of an append already answered, or never begun: nothing to
		// attach them to.
		if req.GetIsFinal() {
			b.respondError(&pendingAppend{correlation: req.GetCorrelationId()}, badRequest("the first chunk of an append must carry its options"))
		}
		return nil
	case p == nil:
		p, err = b.begin(req)
		if err == nil && len(b.pending) >= BatchAppendPendingMax && !req.GetIsFinal() {
			err = badRequest(fmt.Sprintf("more than %d appends of one call are waiting for their final chunk", BatchAppendPendingMax))
		}
		if err != nil {
			// Answered now; while there is room, its later chunks are
			// remembered to be dropped rather than answered again.
			b.fail(p, err)
			if req.GetIsFinal() || len(b.pending) >= BatchAppendPendingMax {
				return nil
			}
		}
		b.pending[key] = p
	case req.GetOptions() != nil:
		b.fail(p, badRequest("options sent twice for one correlation id"))
	}
	if !p.failed {
		b.add(p, req.GetProposedMessages())
	}
	if req.GetIsFinal() {
		delete(b.pending, key)
		if !p.failed {
			return b.start(p)
		}
		b.release(p.sizeBytes, false)
	}
	return nil
}

// begin reads an append's options.
func (b *batchCall) begin(req *streams.BatchAppendReq) (*pendingAppend, error) {
	o := req.GetOptions()
	p := &pendingAppend{correlation: req.GetCorrelationId(), options: o, stream: string(o.GetStreamIdentifier().GetStreamName()), arrived: time.Now()}
	switch e := o.GetExpectedStreamPosition().(type) {
	case *streams.BatchAppendReq_Options_StreamPosition:
		p.expected = annals.Exact(annals.Revision(e.StreamPosition))
	case *streams.BatchAppendReq_Options_NoStream:
		p.expected = annals.NoStream
	case *streams.BatchAppendReq_Options_StreamExists:
		p.expected = annals.StreamExists
	case *streams.BatchAppendReq_Options_Any:
		p.expected = annals.Any
	default:
		return p, badRequest("the expected stream position is missing")
	}
	switch d := o.GetDeadlineOption().(type) {
	case *streams.BatchAppendReq_Options_Deadline:
		p.deadline = time.Now().Add(d.Deadline.AsDuration())
	case *streams.BatchAppendReq_Options_Deadline_21_10_0:
		p.deadline = d.Deadline_21_10_0.AsTime()
	}
	return p, b.s.limits.CheckWritableStream(p.stream)
}

// add converts a chunk's events and holds their bytes, failing the append
// if it grows past the store's limits or the call's byte bound.
func (b *batchCall) add(p *pendingAppend, msgs []*streams.BatchAppendReq_ProposedMessage) {
	size := 0
	events := make([]annals.EventData, 0, len(msgs))
	for _, m := range msgs {
		ev, err := proposedToEvent(m)
		if err != nil {
			b.fail(p, badRequest(err.Error()))
			return
		}
		size += annals.EventSizeBytes(&ev)
		events = append(events, ev)
	}
	if err := appendTooLarge(b.s.limits, len(p.events)+len(events), p.sizeBytes+size); err != nil {
		b.fail(p, err)
		return
	}
	if err := b.s.budget.acquire(b.ctx, size); err != nil {
		b.fail(p, err)
		return
	}
	if !b.hold(size) {
		b.s.budget.release(size)
		b.fail(p, badRequest(fmt.Sprintf("the call holds more than %d bytes of unfinished appends", BatchAppendBytesMax)))
		return
	}
	p.events = append(p.events, events...)
	p.sizeBytes += size
}

// fail answers p with err and drops what it holds; its later chunks are
// ignored.
func (b *batchCall) fail(p *pendingAppend, err error) {
	if p.failed {
		return
	}
	b.respondError(p, err)
	b.release(p.sizeBytes, false)
	p.failed, p.events, p.sizeBytes = true, nil, 0
}

// hold reserves n bytes, waiting while appends in flight hold the bytes it
// needs. It reports false if pending appends alone hold them: waiting
// could never end.
func (b *batchCall) hold(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.heldBytes+n > BatchAppendBytesMax {
		if b.flyBytes == 0 || b.ctx.Err() != nil {
			return false
		}
		b.bytesFreed.Wait()
	}
	b.heldBytes += n
	return true
}

func (b *batchCall) release(n int, inFlight bool) {
	b.s.budget.release(n)
	b.mu.Lock()
	b.heldBytes -= n
	if inFlight {
		b.flyBytes -= n
	}
	b.mu.Unlock()
	b.bytesFreed.Broadcast()
}

// start runs p's append in its own goroutine, after the call's previous
// append to the same stream.
func (b *batchCall) start(p *pendingAppend) error {
	select {
	case b.slots <- struct{}{}:
	case <-b.ctx.Done():
		b.release(p.sizeBytes, false)
		return status.FromContextError(b.ctx.Err()).Err()
	}
	b.mu.Lock()
	before := b.tails[p.stream]
	done := make(chan struct{})
	b.tails[p.stream] = done
	b.flyBytes += p.sizeBytes
	b.mu.Unlock()
	b.running.Add(1)
	go func() {
		defer b.running.Done()
		defer func() { <-b.slots }()
		defer b.release(p.sizeBytes, true)
		defer func() {
			b.mu.Lock()
			if b.tails[p.stream] == done {
				delete(b.tails, p.stream)
			}
			b.mu.Unlock()
			close(done)
		}()
		if before != nil {
			select {
			case <-before:
			case <-b.ctx.Done():
				return
			}
		}
		b.run(p)
	}()
	return nil
}

// run appends p and answers it.
func (b *batchCall) run(p *pendingAppend) {
	ctx := b.ctx
	if !p.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, p.deadline)
		defer cancel()
	}
	res, err := b.s.store.Append(ctx, p.stream, p.expected, p.events...)
	if err != nil {
		if b.ctx.Err() != nil {
			return // the call is over: nobody to answer
		}
		b.respondError(p, err)
		return
	}
	ok := &streams.BatchAppendResp_Success{}
	if r, exact := res.NextExpected.Revision(); exact {
		ok.CurrentRevisionOption = &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: uint64(r)}
	} else {
		ok.CurrentRevisionOption = &streams.BatchAppendResp_Success_NoStream{NoStream: &emptypb.Empty{}}
	}
	if res.LastPosition > 0 {
		ok.PositionOption = &streams.BatchAppendResp_Success_Position{Position: &shared.AllStreamPosition{
			CommitPosition: uint64(res.LastPosition), PreparePosition: uint64(res.LastPosition)}}
	} else {
		ok.PositionOption = &streams.BatchAppendResp_Success_NoPosition{NoPosition: &emptypb.Empty{}}
	}
	b.respond(p, &streams.BatchAppendResp{Result: &streams.BatchAppendResp_Success_{Success: ok}})
}

func (b *batchCall) respondError(p *pendingAppend, err error) {
	b.respond(p, &streams.BatchAppendResp{Result: &streams.BatchAppendResp_Error{Error: batchStatus(err, b.s.limits, b.s.logger)}})
}

// respond sends resp for p, echoing its correlation id, stream and
// expected position as KurrentDB does.
func (b *batchCall) respond(p *pendingAppend, resp *streams.BatchAppendResp) {
	resp.CorrelationId = p.correlation
	if o := p.options; o != nil {
		resp.StreamIdentifier = o.GetStreamIdentifier()
		switch e := o.GetExpectedStreamPosition().(type) {
		case *streams.BatchAppendReq_Options_StreamPosition:
			resp.ExpectedStreamPosition = &streams.BatchAppendResp_StreamPosition{StreamPosition: e.StreamPosition}
		case *streams.BatchAppendReq_Options_NoStream:
			resp.ExpectedStreamPosition = &streams.BatchAppendResp_NoStream{NoStream: e.NoStream}
		case *streams.BatchAppendReq_Options_StreamExists:
			resp.ExpectedStreamPosition = &streams.BatchAppendResp_StreamExists{StreamExists: e.StreamExists}
		case *streams.BatchAppendReq_Options_Any:
			resp.ExpectedStreamPosition = &streams.BatchAppendResp_Any{Any: e.Any}
		}
	}
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	if b.sendErr != nil {
		return
	}
	if err := b.call.Send(resp); err != nil {
		b.sendErr = err
		b.cancel() // the client is gone: stop the rest
	}
}

func (b *batchCall) sendFailure() error {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	return b.sendErr
}

// batchStatus is an append's error as KurrentDB puts it in a BatchAppend
// response: a google.rpc.Status whose details name the error, so each
// client raises its own typed error. A failure with no name in the protocol
// goes out as storeUnavailable, its cause to logger.
func batchStatus(err error, limits annals.Limits, logger *slog.Logger) *rpcstatus.Status {
	var wrong *annals.WrongExpectedRevisionError
	var invalid *annals.InvalidInputError
	var bad *batchBadRequest
	var busy *errBusy
	code, detail := codes.Unknown, proto.Message(&shared.Unknown{})
	switch {
	case errors.As(err, &busy):
		code = codes.ResourceExhausted
	case errors.As(err, &wrong):
		code, detail = codes.FailedPrecondition, wrongExpectedDetail(wrong)
	case errors.Is(err, annals.ErrStreamDeleted):
		code, detail = codes.FailedPrecondition, &shared.StreamDeleted{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(streamOf(err))}}
	case errors.As(err, &invalid) && invalid.TooLarge:
		code, detail = codes.InvalidArgument, &shared.MaximumAppendSizeExceeded{MaxAppendSize: uint32(min(limits.MaxAppendSizeBytes, 1<<32-1))}
	case errors.As(err, &bad), errors.Is(err, annals.ErrInvalidInput):
		code, detail = codes.InvalidArgument, &shared.BadRequest{Message: err.Error()}
	case errors.Is(err, annals.ErrDuplicateEventID):
		code, detail = codes.AlreadyExists, &shared.BadRequest{Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		code, detail = codes.DeadlineExceeded, &shared.Timeout{}
	case errors.Is(err, annals.ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, annals.ErrDiskFull):
		code = codes.ResourceExhausted // as toStatus
	}
	msg := err.Error()
	if code == codes.Unknown {
		logger.Error("append failed; the client was told only that the store is unavailable", "method", "BatchAppend", "err", err)
		code, msg = codes.Unavailable, storeUnavailable
	}
	st := &rpcstatus.Status{Code: int32(code), Message: msg}
	if a, aerr := anypb.New(detail); aerr == nil {
		st.Details = []*anypb.Any{a}
	}
	return st
}

func wrongExpectedDetail(w *annals.WrongExpectedRevisionError) *shared.WrongExpectedVersion {
	out := &shared.WrongExpectedVersion{}
	if r, ok := w.Actual.Revision(); ok {
		out.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentStreamRevision{CurrentStreamRevision: uint64(r)}
	} else {
		out.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &emptypb.Empty{}}
	}
	switch r, exact := w.Expected.Revision(); {
	case exact:
		out.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamPosition{ExpectedStreamPosition: uint64(r)}
	case w.Expected.IsNoStream():
		out.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &emptypb.Empty{}}
	case w.Expected.IsStreamExists():
		out.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &emptypb.Empty{}}
	default:
		out.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedAny{ExpectedAny: &emptypb.Empty{}}
	}
	return out
}

// batchBadRequest is a malformed BatchAppend request.
type batchBadRequest struct{ msg string }

func (e *batchBadRequest) Error() string { return e.msg }

func badRequest(msg string) error { return &batchBadRequest{msg: msg} }
