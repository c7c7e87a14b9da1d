package server

import (
	"errors"
	"iter"
	"math"
	"regexp"

	"github.com/annals/annals"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Read serves counted reads of a stream or of $all. A counted read sends
// only events or stream-not-found: the Go client panics on anything else.
func (s *streamsServer) Read(req *streams.ReadReq, stream grpc.ServerStreamingServer[streams.ReadResp]) error {
	opts := req.GetOptions()
	if opts == nil {
		return invalidArgument(errors.New("read options are missing"))
	}
	limit := opts.GetCount()
	if limit == math.MaxInt64 || limit == math.MaxUint64 {
		limit = 0 // the clients' "all of it"
	}
	dir := annals.Forwards
	if opts.GetReadDirection() == streams.ReadReq_Options_Backwards {
		dir = annals.Backwards
	}
	uuidAsString := opts.GetUuidOption().GetString_() != nil
	if opts.GetSubscription() != nil {
		return s.subscribe(opts, stream, uuidAsString)
	}

	var events iter.Seq2[annals.Event, error]
	var streamName []byte
	switch {
	case opts.GetStream() != nil:
		so := opts.GetStream()
		streamName = so.GetStreamIdentifier().GetStreamName()
		from := streamFrom(so).first()
		events = s.store.ReadStream(stream.Context(), string(streamName), annals.ReadStreamOptions{Direction: dir, From: from, Limit: limit})
	case opts.GetAll() != nil:
		at := allFrom(opts.GetAll())
		from := at.first()
		if dir == annals.Backwards && !at.start && !at.end {
			// A KurrentDB position is where an event starts: reading
			// backwards from it begins with the event before.
			if at.at == 0 {
				return nil
			}
			from = at.at - 1
		}
		filter, err := filterFromProto(opts.GetFilter())
		if err != nil {
			return invalidArgument(err)
		}
		events = s.store.ReadAll(stream.Context(), annals.ReadAllOptions{Direction: dir, From: from, Limit: limit, Filter: filter})
	default:
		return invalidArgument(errors.New("read options name neither a stream nor $all"))
	}
	for e, err := range events {
		if errors.Is(err, annals.ErrStreamNotFound) {
			return stream.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{
				StreamNotFound: &streams.ReadResp_StreamNotFound{StreamIdentifier: &shared.StreamIdentifier{StreamName: streamName}}}})
		}
		if err != nil {
			return unaryStreamError(stream, err)
		}
		if err := stream.Send(&streams.ReadResp{Content: &streams.ReadResp_Event{Event: recordedToProto(&e, uuidAsString)}}); err != nil {
			return err // the client went away
		}
	}
	return nil
}

func invalidArgument(err error) error { return status.Error(codes.InvalidArgument, err.Error()) }

// wireFrom is where a KurrentDB read or subscription starts: the start,
// the end, or a revision (streams) or commit position ($all).
type wireFrom[T annals.Revision | annals.Position] struct {
	start, end bool
	at         T
}

func streamFrom(o *streams.ReadReq_Options_StreamOptions) wireFrom[annals.Revision] {
	return wireFrom[annals.Revision]{start: o.GetStart() != nil, end: o.GetEnd() != nil, at: annals.Revision(o.GetRevision())}
}

func allFrom(o *streams.ReadReq_Options_AllOptions) wireFrom[annals.Position] {
	return wireFrom[annals.Position]{start: o.GetStart() != nil || o.GetPosition() == nil && o.GetEnd() == nil,
		end: o.GetEnd() != nil, at: annals.Position(o.GetPosition().GetCommitPosition())}
}

// first is the first revision or position a read delivers: reads include
// the one they name.
func (w wireFrom[T]) first() T {
	switch {
	case w.end:
		return annals.End
	case w.start:
		return annals.Start
	}
	return w.at
}

// after is the first one a subscription delivers: KurrentDB subscriptions
// start after the one they name. Past the last possible one is the end.
func (w wireFrom[T]) after() T {
	switch {
	case w.end:
		return annals.End
	case w.start:
		return annals.Start
	}
	return annals.After(w.at)
}

// filterFromProto turns a server-side filter into an annals.Filter.
func filterFromProto(f *streams.ReadReq_Options_FilterOptions) (*annals.Filter, error) {
	switch {
	case f == nil:
		return nil, nil
	case f.GetStreamIdentifier() != nil:
		return filterOf(annals.FilterStreamName, f.GetStreamIdentifier())
	case f.GetEventType() != nil:
		return filterOf(annals.FilterEventType, f.GetEventType())
	}
	return nil, errors.New("the filter names neither stream names nor event types")
}

// filterExpression is a filter's expression in a read and in a persistent
// subscription: the same fields in two generated types.
type filterExpression interface {
	GetPrefix() []string
	GetRegex() string
}

// filterOf builds the filter an expression asks for: its prefixes, or its
// regular expression if it has no prefix (KurrentDB's precedence).
func filterOf(on annals.FilterOn, expr filterExpression) (*annals.Filter, error) {
	out := &annals.Filter{On: on, Prefixes: expr.GetPrefix()}
	if re := expr.GetRegex(); re != "" && len(out.Prefixes) == 0 {
		compiled, err := regexp.Compile(re)
		if err != nil {
			return nil, err
		}
		out.Regex = compiled
	}
	return out, out.Validate()
}
