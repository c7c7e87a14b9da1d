package remote

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrUnreachable matches every failure to reach the server: nothing
// listens at the address, the connection broke, or the two sides disagree
// on TLS.
var ErrUnreachable = errors.New("cannot reach server")

// call is what an operation was asked, to give its error its fields back.
type call struct {
	ctx      context.Context
	stream   string
	expected annals.ExpectedRevision
	// write: the call appends, deletes or tombstones, sent with ctx live.
	write bool
}

// fromError maps the client's errors onto annals' errors, with the fields
// of local stores' errors, and a message that says what went wrong rather
// than the client's codes. A write that may have reached the server and
// ended without its answer is annals.OutcomeUnknown of that error.
func (s *Store) fromError(c call, err error) error {
	if err == nil {
		return nil
	}
	mapped := s.mapError(c, err)
	if c.write && mayHaveWritten(err, mapped) {
		return annals.OutcomeUnknown(mapped)
	}
	return mapped
}

// notSentSigns are the words of a failure that came before the request
// left, or of a server's answer that it wrote nothing (annals serve's
// closed store).
var notSentSigns = []string{"error while dialing", "connection refused", "server is shutting down"}

// mayHaveWritten tells whether a write that failed with err (mapped to
// mapped) may have been written: its caller gave up or its deadline
// passed once it was sent, or the connection or the server's store failed
// in the middle of it. An answer the server gave (a wrong expected
// revision, bad input) wrote nothing.
func mayHaveWritten(err, mapped error) bool {
	if errors.Is(mapped, context.Canceled) || errors.Is(mapped, context.DeadlineExceeded) {
		return true
	}
	if !errors.Is(mapped, ErrUnreachable) {
		return false
	}
	lower := strings.ToLower(err.Error())
	for _, sign := range notSentSigns {
		if strings.Contains(lower, sign) {
			return false
		}
	}
	return true
}

// mapError is fromError's mapping, outcome aside.
func (s *Store) mapError(c call, err error) error {
	if cerr := c.ctx.Err(); cerr != nil {
		return cerr
	}
	var kerr *kurrentdb.Error
	if !errors.As(err, &kerr) {
		return err
	}
	switch kerr.Code() {
	case kurrentdb.ErrorCodeWrongExpectedVersion:
		return s.wrongExpected(c, kerr.Err())
	case kurrentdb.ErrorCodeStreamDeleted, kurrentdb.ErrorCodeStreamTombstoned:
		return annals.StreamDeleted(c.stream)
	case kurrentdb.ErrorCodeResourceNotFound:
		return annals.StreamNotFound(c.stream)
	case kurrentdb.ErrorCodeConnectionClosed:
		return fmt.Errorf("%w: the connection to %s is closed", annals.ErrClosed, s.addr)
	case kurrentdb.ErrorCodeAppendRecordSizeExceeded, kurrentdb.ErrorCodeAppendTransactionSizeExceeded:
		return fmt.Errorf("%w: %v", annals.ErrInvalidInput, kerr.Err())
	case kurrentdb.ErrorCodeUnauthenticated, kurrentdb.ErrorCodeAccessDenied:
		return fmt.Errorf("remote: the server at %s refused the credentials (give them in the URL: "+
			"kurrentdb://user:password@host:port)%s", s.addr, detail(kerr.Err()))
	}
	st, ok := status.FromError(kerr.Err())
	if !ok {
		return fmt.Errorf("remote: the server at %s: %v", s.addr, kerr.Err())
	}
	return s.fromStatus(c, st)
}

// fromStatus maps a status the client did not classify.
func (s *Store) fromStatus(c call, st *status.Status) error {
	msg := strings.TrimPrefix(st.Message(), "annals: ")
	switch st.Code() {
	case codes.FailedPrecondition:
		if lower := strings.ToLower(msg); strings.Contains(lower, "wrong expected revision") || strings.Contains(lower, "wrongexpectedversion") {
			return s.wrongExpected(c, st.Err())
		}
	case codes.InvalidArgument:
		return fmt.Errorf("%w: %s", annals.ErrInvalidInput, strings.TrimPrefix(msg, "invalid input: "))
	case codes.AlreadyExists:
		if dup := duplicateOf(st); dup != nil {
			return dup
		}
		return fmt.Errorf("%w: %s", annals.ErrDuplicateEventID, msg)
	case codes.Unavailable:
		return s.unreachable(msg)
	case codes.DeadlineExceeded:
		// A call may fail on its context's deadline an instant before the
		// context says so: the caller's deadline passing is that error.
		if d, ok := c.ctx.Deadline(); ok && !time.Now().Before(d) {
			return context.DeadlineExceeded
		}
		return fmt.Errorf("remote: the server at %s did not answer within the call's deadline: %w", s.addr, context.DeadlineExceeded)
	case codes.Internal:
		// The client refuses to encode what the protocol cannot carry
		// (a string that is not UTF-8): bad input, nothing was sent.
		if strings.Contains(msg, "error while marshaling") {
			return &annals.InvalidInputError{Field: "event", Reason: msg}
		}
	case codes.Canceled:
		return fmt.Errorf("remote: the call to %s was cancelled: %w", s.addr, context.Canceled)
	case codes.ResourceExhausted:
		// An annals server's full disk; other exhausted resources are
		// reported below as they came.
		if rest, ok := strings.CutPrefix(st.Message(), annals.ErrDiskFull.Error()); ok {
			return fmt.Errorf("%w%s", annals.ErrDiskFull, rest)
		}
	}
	return fmt.Errorf("remote: the server at %s failed the call (%s): %s", s.addr, st.Code(), msg)
}

// actualPattern finds the actual revision in a wrong-expected-version
// message: annals' ("..., actual 4", "actual no stream") and KurrentDB's
// ("Actual version: 4", -1 or nothing for no stream); the Go client's own
// ("but got '4'", "'no_stream'").
var actualPattern = regexp.MustCompile(`(?i)(?:actual(?: version:)? |but got ')(no[ _]stream|-1|\d*)'?\s*$`)

// wrongExpected rebuilds a *WrongExpectedRevisionError: the stream and the
// expected revision are the call's, the actual revision the server's
// message says, or if it says none, the stream's last revision read now.
func (s *Store) wrongExpected(c call, err error) error {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	w := &annals.WrongExpectedRevisionError{Stream: c.stream, Expected: c.expected, Actual: annals.NoStream}
	if m := actualPattern.FindStringSubmatch(msg); m != nil {
		if r, perr := strconv.ParseUint(m[1], 10, 64); perr == nil {
			w.Actual = annals.Exact(annals.Revision(r))
		}
		return w
	}
	for e, rerr := range s.ReadStream(c.ctx, c.stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if rerr == nil {
			w.Actual = annals.Exact(e.Revision)
		}
	}
	return w
}

// unreachable says that the server could not be reached, and why in the
// words of the likeliest mistake.
func (s *Store) unreachable(msg string) error {
	lower := strings.ToLower(msg)
	hint := ""
	switch {
	case s.tls && strings.Contains(lower, "x509"):
		hint = " (the server's certificate is not trusted here: give the CA that signed it with tlsCAFile=FILE in the URL)"
	case s.tls && (strings.Contains(lower, "tls") || strings.Contains(lower, "handshake")):
		hint = " (the client speaks TLS and the server does not answer in TLS: for a server without TLS, " +
			"add ?tls=false to the URL)"
	case !s.tls && (strings.Contains(lower, "preface") || strings.Contains(lower, "eof") || strings.Contains(lower, "reset")):
		hint = " (the URL says tls=false: if the server serves TLS, drop tls=false and give its CA with tlsCAFile=FILE)"
	}
	reason := msg
	if i := strings.LastIndex(msg, "desc = "); i >= 0 {
		reason = strings.Trim(msg[i+len("desc = "):], `"`)
	}
	reason = strings.ReplaceAll(strings.TrimPrefix(reason, "transport: Error while dialing: "), `\"`, `"`)
	return fmt.Errorf("remote: %w at %s: %s%s", ErrUnreachable, s.addr, reason, hint)
}

// detail is ": " and the server's message, if the error carries one.
func detail(err error) string {
	if st, ok := status.FromError(err); ok && st.Message() != "" {
		return ": " + st.Message()
	}
	return ""
}
