// Package remote is an annals.Store on a server that speaks the KurrentDB
// gRPC protocol (annals serve, or KurrentDB itself), through the official
// KurrentDB Go client. The command line uses it for --server.
//
// Differences from a local store, imposed by the protocol: errors keep the
// server's message but lose their structure (a wrong expected revision is
// ErrWrongExpectedRevision with the server's text, not a
// *WrongExpectedRevisionError with fields) — except an annals server's
// refusal of an event id recorded elsewhere, which comes back as a whole
// *DuplicateEventError; stream metadata is read and written as $metadata
// events of the metastream.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store talks to one server.
type Store struct {
	client *kurrentdb.Client
}

var _ annals.Store = (*Store)(nil)

// Dial connects to url (kurrentdb://host:port?tls=false, or with TLS and
// credentials as the official client takes them).
func Dial(url string) (*Store, error) {
	cfg, err := kurrentdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	cfg.Logger = func(kurrentdb.LogLevel, string, ...any) {} // errors come back as values
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	return &Store{client: client}, nil
}

// Close implements annals.Store.
func (s *Store) Close() error { return s.client.Close() }

func streamState(e annals.ExpectedRevision) kurrentdb.StreamState {
	if r, ok := e.Revision(); ok {
		return kurrentdb.StreamRevision{Value: r}
	}
	switch {
	case e.IsNoStream():
		return kurrentdb.NoStream{}
	case e.IsStreamExists():
		return kurrentdb.StreamExists{}
	}
	return kurrentdb.Any{}
}

// fromError maps the client's errors onto annals' sentinels.
func fromError(stream string, err error) error {
	if err == nil {
		return nil
	}
	var kerr *kurrentdb.Error
	if !errors.As(err, &kerr) {
		return err
	}
	switch kerr.Code() {
	case kurrentdb.ErrorCodeWrongExpectedVersion:
		return fmt.Errorf("%w on stream %q: %v", annals.ErrWrongExpectedRevision, stream, kerr)
	case kurrentdb.ErrorCodeStreamDeleted, kurrentdb.ErrorCodeStreamTombstoned:
		return annals.StreamDeleted(stream)
	case kurrentdb.ErrorCodeResourceNotFound:
		return annals.StreamNotFound(stream)
	case kurrentdb.ErrorCodeConnectionClosed:
		return fmt.Errorf("%w: %v", annals.ErrClosed, kerr)
	case kurrentdb.ErrorCodeAppendRecordSizeExceeded, kurrentdb.ErrorCodeAppendTransactionSizeExceeded:
		return fmt.Errorf("%w: %v", annals.ErrInvalidInput, kerr)
	}
	// The server's refusals of bad input come as InvalidArgument; an
	// annals server's refusal of an event id recorded elsewhere as
	// AlreadyExists.
	if st, ok := status.FromError(kerr.Unwrap()); ok {
		switch st.Code() {
		case codes.InvalidArgument:
			return fmt.Errorf("%w: %s", annals.ErrInvalidInput, st.Message())
		case codes.AlreadyExists:
			if dup := duplicateOf(st); dup != nil {
				return dup
			}
			return fmt.Errorf("%w: %s", annals.ErrDuplicateEventID, st.Message())
		case codes.ResourceExhausted:
			// An annals server's full disk; other exhausted resources stay
			// as they came.
			if msg, ok := strings.CutPrefix(st.Message(), annals.ErrDiskFull.Error()); ok {
				return fmt.Errorf("%w%s", annals.ErrDiskFull, msg)
			}
		}
	}
	return err
}

// duplicateOf reads where an annals server says an event id is recorded.
func duplicateOf(st *status.Status) *annals.DuplicateEventError {
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ResourceInfo)
		if !ok || info.GetResourceType() != "event" {
			continue
		}
		id, err := uuid.Parse(info.GetResourceName())
		rev, rerr := strconv.ParseUint(info.GetDescription(), 10, 64)
		if err == nil && rerr == nil {
			return &annals.DuplicateEventError{ID: id, Stream: info.GetOwner(), Revision: rev}
		}
	}
	return nil
}

// Append implements annals.Store.
func (s *Store) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	data := make([]kurrentdb.EventData, len(events))
	for i, e := range events {
		id := e.ID
		if id == (uuid.UUID{}) {
			id = uuid.New()
		}
		ct := kurrentdb.ContentTypeJson
		if e.ContentType != "" && e.ContentType != annals.ContentTypeJSON {
			ct = kurrentdb.ContentTypeBinary
		}
		data[i] = kurrentdb.EventData{EventID: id, EventType: e.Type, ContentType: ct, Data: e.Data, Metadata: e.Metadata}
	}
	r, err := s.client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: streamState(expected)}, data...)
	if err != nil {
		return annals.AppendResult{}, fromError(stream, err)
	}
	res := annals.AppendResult{NextExpected: annals.Exact(r.NextExpectedVersion)}
	if len(events) > 0 {
		res.LastPosition = r.CommitPosition
		res.FirstPosition = r.CommitPosition - uint64(len(events)) + 1
	}
	return res, nil
}

// Delete implements annals.Store.
func (s *Store) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	r, err := s.client.DeleteStream(ctx, stream, kurrentdb.DeleteStreamOptions{StreamState: streamState(expected)})
	if err != nil {
		return annals.DeleteResult{}, fromError(stream, err)
	}
	return annals.DeleteResult{Position: r.Position.Commit}, nil
}

// Tombstone implements annals.Store.
func (s *Store) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	r, err := s.client.TombstoneStream(ctx, stream, kurrentdb.TombstoneStreamOptions{StreamState: streamState(expected)})
	if err != nil {
		return annals.DeleteResult{}, fromError(stream, err)
	}
	return annals.DeleteResult{Position: r.Position.Commit}, nil
}

func toEvent(r *kurrentdb.RecordedEvent) annals.Event {
	ct := annals.ContentTypeJSON
	if r.ContentType != "" {
		ct = r.ContentType
	}
	return annals.Event{
		ID: r.EventID, Stream: r.StreamID, Type: r.EventType, ContentType: ct,
		Data: r.Data, Metadata: r.UserMetadata, Recorded: r.CreatedDate,
		Revision: r.EventNumber, Position: r.Position.Commit,
	}
}

// drain turns the client's read stream into an iterator.
func drain(stream string, rs *kurrentdb.ReadStream, err error, limit uint64) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err != nil {
			yield(annals.Event{}, fromError(stream, err))
			return
		}
		defer rs.Close()
		for n := uint64(0); limit == 0 || n < limit; n++ {
			e, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(annals.Event{}, fromError(stream, err))
				return
			}
			if !yield(toEvent(e.OriginalEvent()), nil) {
				return
			}
		}
	}
}

const readAllOfIt = uint64(1<<63 - 1)

// ReadStream implements annals.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts annals.ReadStreamOptions) iter.Seq2[annals.Event, error] {
	o := kurrentdb.ReadStreamOptions{From: kurrentdb.Revision(opts.From)}
	switch opts.From {
	case annals.Start:
		o.From = kurrentdb.Start{}
	case annals.End:
		o.From = kurrentdb.End{}
	}
	o.Direction = direction(opts.Direction)
	count := readAllOfIt
	if opts.Limit > 0 {
		count = opts.Limit
	}
	return func(yield func(annals.Event, error) bool) {
		// The call starts when the caller ranges, so an iterator never
		// ranged holds no call open.
		rs, err := s.client.ReadStream(ctx, stream, o, count)
		drain(stream, rs, err, opts.Limit)(yield)
	}
}

func direction(d annals.Direction) kurrentdb.Direction {
	if d == annals.Backwards {
		return kurrentdb.Backwards
	}
	return kurrentdb.Forwards
}

// ReadAll implements annals.Store. A filter is applied on this side: the
// client's counted $all read takes none.
func (s *Store) ReadAll(ctx context.Context, opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	o := kurrentdb.ReadAllOptions{From: kurrentdb.Position{Commit: opts.From, Prepare: opts.From}}
	switch opts.From {
	case annals.Start:
		o.From = kurrentdb.Start{}
	case annals.End:
		o.From = kurrentdb.End{}
	}
	if o.Direction = direction(opts.Direction); o.Direction == kurrentdb.Backwards {
		if opts.From != annals.End {
			// KurrentDB reads backwards from before the position given;
			// annals' From is the first event to read.
			o.From = kurrentdb.Position{Commit: opts.From + 1, Prepare: opts.From + 1}
		}
	}
	return func(yield func(annals.Event, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		rs, err := s.client.ReadAll(ctx, o, readAllOfIt)
		var n uint64
		for e, err := range drain(annals.AllStream, rs, err, 0) {
			if err != nil {
				yield(e, err)
				return
			}
			if !opts.Filter.Match(&e) {
				continue
			}
			if !yield(e, nil) {
				return
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return
			}
		}
	}
}

// StreamMetadata implements annals.Store: the latest $metadata event of
// the metastream.
func (s *Store) StreamMetadata(ctx context.Context, stream string) (annals.StreamMetadata, annals.ExpectedRevision, error) {
	for e, err := range s.ReadStream(ctx, annals.MetastreamOf(stream), annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			return annals.StreamMetadata{}, annals.NoStream, nil
		}
		if err != nil {
			return annals.StreamMetadata{}, annals.NoStream, err
		}
		md, err := annals.ParseStreamMetadata(e.Data)
		return md, annals.Exact(e.Revision), err
	}
	return annals.StreamMetadata{}, annals.NoStream, nil
}

// SetStreamMetadata implements annals.Store.
func (s *Store) SetStreamMetadata(ctx context.Context, stream string, expected annals.ExpectedRevision, md annals.StreamMetadata) (annals.AppendResult, error) {
	data, err := json.Marshal(md)
	if err != nil {
		return annals.AppendResult{}, err
	}
	return s.Append(ctx, annals.MetastreamOf(stream), expected, annals.EventData{Type: annals.EventTypeMetadata, Data: data})
}

// SubscribeToStream implements annals.Store. KurrentDB subscriptions start
// after the revision given; annals' From is the first one to deliver.
func (s *Store) SubscribeToStream(ctx context.Context, stream string, opts annals.SubscribeStreamOptions) iter.Seq2[annals.Message, error] {
	var from kurrentdb.StreamPosition = kurrentdb.Revision(opts.From - 1)
	switch opts.From {
	case annals.Start:
		from = kurrentdb.Start{}
	case annals.End:
		from = kurrentdb.End{}
	}
	return func(yield func(annals.Message, error) bool) {
		sub, err := s.client.SubscribeToStream(ctx, stream, kurrentdb.SubscribeToStreamOptions{From: from})
		follow(ctx, stream, sub, err, yield)
	}
}

// SubscribeToAll implements annals.Store.
func (s *Store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	var from kurrentdb.AllPosition = kurrentdb.Position{Commit: opts.From - 1, Prepare: opts.From - 1}
	switch {
	case opts.From <= 1:
		from = kurrentdb.Start{}
	case opts.From == annals.End:
		from = kurrentdb.End{}
	}
	o := kurrentdb.SubscribeToAllOptions{From: from}
	return func(yield func(annals.Message, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Message{}, err)
			return
		}
		if f := opts.Filter; f != nil {
			prefixes, re := f.Expression()
			o.Filter = &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: prefixes}
			if f.On == annals.FilterEventType {
				o.Filter.Type = kurrentdb.EventFilterType
			}
			if re != nil {
				o.Filter.Regex = re.String()
			}
			interval := opts.CheckpointInterval
			if interval == 0 {
				interval = annals.DefaultCheckpointInterval
			}
			o.MaxSearchWindow, o.CheckpointInterval = int(min(interval, 1<<20)), 1
		}
		sub, err := s.client.SubscribeToAll(ctx, o)
		follow(ctx, annals.AllStream, sub, err, yield)
	}
}

// follow relays a client subscription until the consumer stops, ctx ends
// or the server drops it.
func follow(ctx context.Context, stream string, sub *kurrentdb.Subscription, err error, yield func(annals.Message, error) bool) {
	if err != nil {
		yield(annals.Message{}, fromError(stream, err))
		return
	}
	defer sub.Close()
	for {
		m := sub.Recv()
		var msg annals.Message
		switch {
		case m.SubscriptionDropped != nil:
			err := m.SubscriptionDropped.Error
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(annals.Message{}, fromError(stream, err))
			return
		case m.EventAppeared != nil:
			msg = annals.Message{Kind: annals.MessageEvent, Event: toEvent(m.EventAppeared.OriginalEvent())}
		case m.CheckPointReached != nil:
			msg = annals.Message{Kind: annals.MessageCheckpoint, Position: m.CheckPointReached.Commit}
		case m.CaughtUp != nil:
			msg = annals.Message{Kind: annals.MessageCaughtUp}
			if p := m.CaughtUp.Position; p != nil {
				msg.Position = p.Commit
			}
		default:
			continue
		}
		if !yield(msg, nil) {
			return
		}
	}
}
