package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"github.com/annals/annals"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The errors go out as KurrentDB sends them: a status code, and an
// "exception" trailer with detail trailers, which the clients turn into
// their own typed errors.
const (
	exceptionWrongExpectedVersion = "wrong-expected-version"
	exceptionStreamDeleted        = "stream-deleted"
	exceptionInvalidArgument      = "invalid-argument"
	exceptionMaxAppendSize        = "maximum-append-size-exceeded"
	// trailerMaxAppendSize goes with exceptionMaxAppendSize: the limit in
	// bytes.
	trailerMaxAppendSize = "maximum-append-size"
	// exceptionDuplicateEventID is Annals' own: KurrentDB checks ids only
	// against the stream's tail, Annals against every event of the stream.
	exceptionDuplicateEventID = "duplicate-event-id"
)

// toStatus maps a store error to a status and the trailers that go with it.
func toStatus(err error) (error, metadata.MD) {
	var wrong *annals.WrongExpectedRevisionError
	var invalid *annals.InvalidInputError
	var dup *annals.DuplicateEventError
	var busy *errBusy
	switch {
	case errors.As(err, &busy):
		return busy, nil
	case errors.As(err, &wrong):
		return status.Error(codes.FailedPrecondition, err.Error()), metadata.Pairs(
			"exception", exceptionWrongExpectedVersion,
			"stream-name", wrong.Stream,
			"expected-version", versionText(wrong.Expected),
			"actual-version", versionText(wrong.Actual))
	case errors.As(err, &dup):
		// The detail carries where the id is recorded, so package remote
		// gives back a *DuplicateEventError, fields and all.
		st := status.New(codes.AlreadyExists, err.Error())
		if withInfo, derr := st.WithDetails(&errdetails.ResourceInfo{ResourceType: "event", ResourceName: dup.ID.String(),
			Owner: dup.Stream, Description: strconv.FormatUint(uint64(dup.Revision), 10)}); derr == nil {
			st = withInfo
		}
		return st.Err(), metadata.Pairs(
			"exception", exceptionDuplicateEventID, "event-id", dup.ID.String(),
			"stream-name", dup.Stream, "revision", strconv.FormatUint(uint64(dup.Revision), 10))
	case errors.Is(err, annals.ErrStreamDeleted):
		return status.Error(codes.FailedPrecondition, err.Error()), metadata.Pairs(
			"exception", exceptionStreamDeleted, "stream-name", streamOf(err))
	case errors.As(err, &invalid) && invalid.TooLarge:
		return status.Error(codes.InvalidArgument, err.Error()), metadata.Pairs("exception", exceptionMaxAppendSize)
	case errors.Is(err, annals.ErrInvalidInput):
		return status.Error(codes.InvalidArgument, err.Error()), metadata.Pairs("exception", exceptionInvalidArgument)
	case errors.Is(err, annals.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down"), nil
	case errors.Is(err, annals.ErrDiskFull):
		// KurrentDB has no answer of its own for this; ResourceExhausted is
		// gRPC's for an exhausted resource, and clients do not take it for
		// a dead node to fail over from, as they do Unavailable.
		return status.Error(codes.ResourceExhausted, err.Error()), nil
	// An outcome unknown because the caller gave up matches the
	// context's error too, and is answered as that; one the store could
	// not learn is a storeFailure, which package remote takes for an
	// outcome unknown.
	case errors.Is(err, context.Canceled):
		// The context's text only: what wraps it may name the database.
		return status.Error(codes.Canceled, context.Canceled.Error()), nil
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error()), nil
	case errors.Is(err, annals.ErrStreamNotFound):
		return status.Error(codes.NotFound, err.Error()), metadata.Pairs("exception", "stream-not-found", "stream-name", streamOf(err))
	}
	return &storeFailure{cause: err}, nil
}

// storeUnavailable is all a client is told of a failure the protocol has
// no name for: its text may name the database, its user or its files.
const storeUnavailable = "store unavailable (the server log has the cause)"

// storeFailure is such a failure: the client gets Unavailable and
// storeUnavailable, the server log the cause (logged by logFailures).
type storeFailure struct{ cause error }

func (e *storeFailure) Error() string { return storeUnavailable }
func (e *storeFailure) Unwrap() error { return e.cause }

// GRPCStatus is what gRPC sends for it.
func (e *storeFailure) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, storeUnavailable)
}

// failureLog logs the causes of the calls that failed with a storeFailure.
type failureLog struct{ logger *slog.Logger }

func (l failureLog) log(method string, err error) {
	var f *storeFailure
	if errors.As(err, &f) {
		l.logger.Error("call failed; the client was told only that the store is unavailable", "method", method, "err", f.cause)
	}
}

func (l failureLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	l.log(info.FullMethod, err)
	return resp, err
}

func (l failureLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	l.log(info.FullMethod, err)
	return err
}

// versionText is KurrentDB's text of an expected or actual version: the
// revision, or -1 (no stream), -2 (any), -4 (stream exists).
func versionText(e annals.ExpectedRevision) string {
	if r, ok := e.Revision(); ok {
		return strconv.FormatUint(uint64(r), 10)
	}
	switch {
	case e.IsNoStream():
		return "-1"
	case e.IsStreamExists():
		return "-4"
	}
	return "-2"
}

// streamOf digs the stream name out of a store error, if it names one.
func streamOf(err error) string {
	var named interface{ StreamName() string }
	if errors.As(err, &named) {
		return named.StreamName()
	}
	return ""
}

// unaryError sets err's trailers on a unary call and returns its status.
func unaryError(ctx context.Context, err error) error {
	st, md := toStatus(err)
	if md != nil {
		_ = grpc.SetTrailer(ctx, md)
	}
	return st
}
