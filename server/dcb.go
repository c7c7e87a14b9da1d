package server

import (
	"context"
	"errors"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/dcbpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// dcbServer serves Annals' DCB service (internal/dcbpb/dcb.proto): reads
// by query and appends under a condition, which KurrentDB's protocol
// cannot carry. Appends count against the appends in progress as the
// v2 ones do.
type dcbServer struct {
	dcbpb.UnimplementedDCBServer
	store  annals.Store
	limits annals.Limits
	budget *appendBudget
}

// Read implements dcbpb.DCBServer: pages of at most
// annals.DefaultReadBatchEvents events.
func (s *dcbServer) Read(req *dcbpb.ReadRequest, stream grpc.ServerStreamingServer[dcbpb.ReadResponse]) error {
	ctx := stream.Context()
	opts := annals.ReadQueryOptions{From: annals.Position(req.GetFrom()), Limit: req.GetLimit()}
	if req.GetBackwards() {
		opts.Direction = annals.Backwards
	}
	page := &dcbpb.ReadResponse{}
	for e, err := range s.store.ReadQuery(ctx, dcbpb.FromQuery(req.GetQuery()), opts) {
		if err != nil {
			st, _ := toStatus(err)
			return st
		}
		page.Events = append(page.Events, dcbpb.ToEvent(&e))
		if len(page.Events) == annals.DefaultReadBatchEvents {
			if err := stream.Send(page); err != nil {
				return err
			}
			page = &dcbpb.ReadResponse{}
		}
	}
	if len(page.Events) > 0 {
		return stream.Send(page)
	}
	return nil
}

// Append implements dcbpb.DCBServer.
func (s *dcbServer) Append(ctx context.Context, req *dcbpb.AppendRequest) (*dcbpb.AppendResponse, error) {
	m, err := dcbpb.FromAppend(req)
	if err != nil {
		return nil, unaryError(ctx, err)
	}
	size := 0
	for i := range m.Records {
		size += annals.EventSizeBytes(&m.Records[i].Event)
	}
	if size > s.limits.MaxAppendSizeBytes {
		return nil, transactionTooLarge(size, s.limits.MaxAppendSizeBytes, len(m.Records))
	}
	if err := s.budget.acquire(ctx, size); err != nil {
		return nil, unaryError(ctx, err)
	}
	defer s.budget.release(size)
	res, err := s.store.AppendMulti(ctx, m)
	if err != nil {
		return nil, dcbError(ctx, err)
	}
	return dcbpb.ToResult(res), nil
}

// dcbError maps an append's error: a failed condition and failed checks
// with their details, the rest as the v1 services do.
func dcbError(ctx context.Context, err error) error {
	var cf *annals.ConditionError
	if errors.As(err, &cf) {
		return v2Error(codes.FailedPrecondition, "APPEND_CONDITION_FAILED", "annals.dcb", cf.Error(),
			&dcbpb.ConditionFailedDetails{Position: uint64(cf.Position)})
	}
	var ce *annals.ConsistencyError
	if errors.As(err, &ce) && len(ce.Violations) > 0 {
		return consistencyViolation(ce)
	}
	return unaryError(ctx, err)
}
