package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/dcbpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Dynamic consistency boundaries go over Annals' own DCB service
// (internal/dcbpb), on the connection AppendMulti's v2 calls use: reads
// by query, and appends with tags or a condition. KurrentDB has no such
// service; against it they fail with errNoDCB.

var errNoDCB = errors.New("remote: tags and queries need annals serve (KurrentDB has no DCB service) and a single-host URL")

func (c *v2Conn) outgoing(ctx context.Context) context.Context {
	md := metadata.Pairs("requires-leader", "true")
	if c.auth != "" {
		md.Set("authorization", c.auth)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// needsDCB reports whether m carries what only the DCB service takes.
func needsDCB(m annals.MultiAppend) bool {
	if m.Condition != nil {
		return true
	}
	for _, r := range m.Records {
		if len(r.Event.Tags) > 0 {
			return true
		}
	}
	return false
}

// appendDCB sends m to the DCB service.
func (s *Store) appendDCB(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	if s.v2 == nil {
		return annals.MultiAppendResult{}, errNoDCB
	}
	if err := ctx.Err(); err != nil {
		return annals.MultiAppendResult{}, err
	}
	r, err := dcbpb.NewDCBClient(s.v2.conn).Append(s.v2.outgoing(ctx), dcbpb.ToAppend(m))
	if err != nil {
		return annals.MultiAppendResult{}, s.dcbError(ctx, m, err)
	}
	return dcbpb.FromResult(r), nil
}

func (s *Store) dcbError(ctx context.Context, m annals.MultiAppend, err error) error {
	if st, ok := status.FromError(err); ok && ctx.Err() == nil {
		if st.Code() == codes.Unimplemented {
			return errNoDCB
		}
		for _, d := range st.Details() {
			if cf, ok := d.(*dcbpb.ConditionFailedDetails); ok {
				return &annals.ConditionError{Position: annals.Position(cf.GetPosition())}
			}
		}
	}
	return s.v2Error(ctx, m, err)
}

// ReadQuery implements annals.Store over the DCB service.
func (s *Store) ReadQuery(ctx context.Context, q annals.Query, opts annals.ReadQueryOptions) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if s.v2 == nil {
			yield(annals.Event{}, errNoDCB)
			return
		}
		if err := q.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the call when the caller stops early
		req := &dcbpb.ReadRequest{Query: dcbpb.ToQuery(q), From: uint64(opts.From), Backwards: opts.Direction == annals.Backwards, Limit: opts.Limit}
		rs, err := dcbpb.NewDCBClient(s.v2.conn).Read(s.v2.outgoing(ctx), req)
		for err == nil {
			var page *dcbpb.ReadResponse
			if page, err = rs.Recv(); err != nil {
				break
			}
			for _, pe := range page.GetEvents() {
				e, cerr := dcbpb.FromEvent(pe)
				if cerr != nil {
					yield(annals.Event{}, cerr)
					return
				}
				if !yield(e, nil) {
					return
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented {
			err = errNoDCB
		} else {
			err = s.fromError(call{ctx: ctx}, err)
		}
		yield(annals.Event{}, fmt.Errorf("remote: reading a query: %w", err))
	}
}

func tagged(events []annals.EventData) bool {
	for _, e := range events {
		if len(e.Tags) > 0 {
			return true
		}
	}
	return false
}

// appendTagged appends events with tags, which the v1 protocol cannot
// carry, as a one-stream append of the DCB service.
func (s *Store) appendTagged(ctx context.Context, stream string, expected annals.ExpectedRevision, events []annals.EventData) (annals.AppendResult, error) {
	m := annals.MultiAppend{}
	for _, e := range events {
		m.Records = append(m.Records, annals.Record{Stream: stream, Event: e})
	}
	if !expected.IsAny() {
		m.Checks = []annals.StreamCheck{{Stream: stream, Expected: expected}}
	}
	r, err := s.appendDCB(ctx, m)
	if err != nil {
		var ce *annals.ConsistencyError
		if errors.As(err, &ce) && len(ce.Violations) == 1 && !ce.Violations[0].Tombstoned {
			v := ce.Violations[0]
			return annals.AppendResult{}, &annals.WrongExpectedRevisionError{Stream: stream, Expected: expected, Actual: actualOf(v)}
		}
		if errors.As(err, &ce) {
			return annals.AppendResult{}, annals.StreamDeleted(stream)
		}
		return annals.AppendResult{}, err
	}
	return annals.AppendResult{NextExpected: r.Streams[0].NextExpected, FirstPosition: r.FirstPosition, LastPosition: r.LastPosition}, nil
}

// actualOf is a violation's actual state as a WrongExpectedRevisionError
// names it: NoStream for a soft-deleted stream.
func actualOf(v annals.Violation) annals.ExpectedRevision {
	if v.Deleted {
		return annals.NoStream
	}
	return v.Actual
}
