// Package remote is an annals.Store on a server that speaks the KurrentDB
// gRPC protocol (annals serve, or KurrentDB itself), through the official
// KurrentDB Go client. The command line uses it for --server.
//
// Errors keep their structure over the wire: a wrong expected revision is
// a *annals.WrongExpectedRevisionError with the stream, the expected
// revision and the actual one (from the append's answer, or the message of
// a delete's FailedPrecondition status; if a server says none, the
// stream's last revision read just after); a missing or deleted stream
// matches ErrStreamNotFound or ErrStreamDeleted; bad input matches
// ErrInvalidInput; an annals server's refusal of an event id recorded
// elsewhere is a whole *annals.DuplicateEventError. A server that cannot
// be reached is ErrUnreachable, "cannot reach server at HOST:PORT", with a
// hint when the two sides disagree on TLS (?tls=false). A call that ends
// on its context's deadline is context.DeadlineExceeded, as on a local
// store.
//
// What the protocol cannot carry, and storetest.Limitations names for the
// conformance suite (run in this package's tests against annals servers on
// the memory, embedded and PostgreSQL stores):
//   - JSONOrBinaryOnly: an event's content type is application/json or
//     application/octet-stream; any other is recorded as the latter (the
//     bytes are kept);
//   - SystemStreamsWritable: a server lets its clients write $ streams and
//     $ event types (as KurrentDB lets admins), so the refusals a local
//     store makes of them do not apply.
//
// Stream metadata is read and written as $metadata events of the
// metastream. An append of no events reads the stream after it to give
// its revision, which the client's answer does not carry.
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

	"google.golang.org/grpc/status"
)

// Store talks to one server.
type Store struct {
	client *kurrentdb.Client
	v2     *v2Conn // nil for a cluster's URL (v2.go)
	addr   string  // host:port, or the hosts, for error messages
	tls    bool
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
	addr := cfg.Address
	if len(cfg.GossipSeeds) > 0 {
		hosts := make([]string, len(cfg.GossipSeeds))
		for i, h := range cfg.GossipSeeds {
			hosts[i] = h.String()
		}
		addr = strings.Join(hosts, ",")
	}
	s := &Store{client: client, addr: addr, tls: !cfg.DisableTLS}
	if len(cfg.GossipSeeds) == 0 {
		if s.v2, err = dialV2(cfg); err != nil {
			client.Close()
			return nil, fmt.Errorf("remote: %w", err)
		}
	}
	return s, nil
}

// Close implements annals.Store.
func (s *Store) Close() error {
	if s.v2 != nil {
		s.v2.conn.Close()
	}
	return s.client.Close()
}

func streamState(e annals.ExpectedRevision) kurrentdb.StreamState {
	if r, ok := e.Revision(); ok {
		return kurrentdb.StreamRevision{Value: uint64(r)}
	}
	switch {
	case e.IsNoStream():
		return kurrentdb.NoStream{}
	case e.IsStreamExists():
		return kurrentdb.StreamExists{}
	}
	return kurrentdb.Any{}
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
			return &annals.DuplicateEventError{ID: id, Stream: info.GetOwner(), Revision: annals.Revision(rev)}
		}
	}
	return nil
}

// Append implements annals.Store.
func (s *Store) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	if tagged(events) {
		return s.appendTagged(ctx, stream, expected, events)
	}
	data := make([]kurrentdb.EventData, len(events))
	for i, e := range events {
		data[i] = eventData(e)
	}
	if err := ctx.Err(); err != nil {
		return annals.AppendResult{}, err // not sent: certainly not written
	}
	r, err := s.client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: streamState(expected)}, data...)
	if err != nil {
		return annals.AppendResult{}, s.fromError(call{ctx, stream, expected, true}, err)
	}
	if len(events) == 0 {
		// The client's result cannot tell a stream without events from
		// one at revision 0: ask the stream.
		return s.zeroEventsResult(ctx, stream)
	}
	last := annals.Position(r.CommitPosition)
	return annals.AppendResult{NextExpected: annals.Exact(annals.Revision(r.NextExpectedVersion)),
		FirstPosition: last - annals.Position(len(events)) + 1, LastPosition: last}, nil
}

// zeroEventsResult is the result of an append of no events that passed
// its expectation: the stream's revision, as read just after.
func (s *Store) zeroEventsResult(ctx context.Context, stream string) (annals.AppendResult, error) {
	res := annals.AppendResult{NextExpected: annals.NoStream}
	for e, err := range s.ReadStream(ctx, stream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) || errors.Is(err, annals.ErrStreamDeleted) {
			return res, nil
		}
		if err != nil {
			return annals.AppendResult{}, err
		}
		res.NextExpected = annals.Exact(e.Revision)
	}
	return res, nil
}

// Delete implements annals.Store.
func (s *Store) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	if err := ctx.Err(); err != nil {
		return annals.DeleteResult{}, err
	}
	r, err := s.client.DeleteStream(ctx, stream, kurrentdb.DeleteStreamOptions{StreamState: streamState(expected)})
	if err != nil {
		return annals.DeleteResult{}, s.fromError(call{ctx, stream, expected, true}, err)
	}
	return annals.DeleteResult{Position: annals.Position(r.Position.Commit)}, nil
}

// Tombstone implements annals.Store.
func (s *Store) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	if err := ctx.Err(); err != nil {
		return annals.DeleteResult{}, err
	}
	r, err := s.client.TombstoneStream(ctx, stream, kurrentdb.TombstoneStreamOptions{StreamState: streamState(expected)})
	if err != nil {
		return annals.DeleteResult{}, s.fromError(call{ctx, stream, expected, true}, err)
	}
	return annals.DeleteResult{Position: annals.Position(r.Position.Commit)}, nil
}

func toEvent(r *kurrentdb.RecordedEvent) annals.Event {
	ct := annals.ContentTypeJSON
	if r.ContentType != "" {
		ct = r.ContentType
	}
	return annals.Event{
		ID: r.EventID, Stream: r.StreamID, Type: r.EventType, ContentType: ct,
		Data: r.Data, Metadata: r.UserMetadata, Recorded: r.CreatedDate,
		Revision: annals.Revision(r.EventNumber), Position: annals.Position(r.Position.Commit),
	}
}

// drain turns the client's read stream into an iterator.
func (s *Store) drain(c call, rs *kurrentdb.ReadStream, err error, limit uint64) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) {
		if err != nil {
			yield(annals.Event{}, s.fromError(c, err))
			return
		}
		defer rs.Close()
		for n := uint64(0); limit == 0 || n < limit; n++ {
			e, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(annals.Event{}, s.fromError(c, err))
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
	o := kurrentdb.ReadStreamOptions{From: kurrentdb.Revision(uint64(opts.From))}
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
		s.drain(call{ctx: ctx, stream: stream}, rs, err, opts.Limit)(yield)
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
	from := uint64(opts.From)
	o := kurrentdb.ReadAllOptions{From: kurrentdb.Position{Commit: from, Prepare: from}}
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
			o.From = kurrentdb.Position{Commit: from + 1, Prepare: from + 1}
		}
	}
	return func(yield func(annals.Event, error) bool) {
		if err := opts.Filter.Validate(); err != nil {
			yield(annals.Event{}, err)
			return
		}
		rs, err := s.client.ReadAll(ctx, o, readAllOfIt)
		var n uint64
		for e, err := range s.drain(call{ctx: ctx, stream: annals.AllStream}, rs, err, 0) {
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
	// The name is checked here: the metastream's name is never empty.
	if err := nameLimits.CheckStreamName(stream); err != nil {
		return annals.StreamMetadata{}, annals.NoStream, err
	}
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
	if err := nameLimits.CheckStreamName(stream); err != nil {
		return annals.AppendResult{}, err
	}
	// Checked on this side too: an $acl of null marshals to none, which a
	// server would accept.
	if err := md.Validate(); err != nil {
		return annals.AppendResult{}, err
	}
	data, err := json.Marshal(md)
	if err != nil {
		return annals.AppendResult{}, err
	}
	return s.Append(ctx, annals.MetastreamOf(stream), expected, annals.EventData{Type: annals.EventTypeMetadata, Data: data})
}

// SubscribeToStream implements annals.Store. KurrentDB subscriptions start
// after the revision given; annals' From is the first one to deliver.
func (s *Store) SubscribeToStream(ctx context.Context, stream string, opts annals.SubscribeStreamOptions) iter.Seq2[annals.Message, error] {
	var from kurrentdb.StreamPosition = kurrentdb.Revision(uint64(opts.From) - 1)
	switch opts.From {
	case annals.Start:
		from = kurrentdb.Start{}
	case annals.End:
		from = kurrentdb.End{}
	}
	return func(yield func(annals.Message, error) bool) {
		sub, err := s.client.SubscribeToStream(ctx, stream, kurrentdb.SubscribeToStreamOptions{From: from})
		s.follow(call{ctx: ctx, stream: stream}, sub, err, yield)
	}
}

// SubscribeToAll implements annals.Store.
func (s *Store) SubscribeToAll(ctx context.Context, opts annals.SubscribeAllOptions) iter.Seq2[annals.Message, error] {
	before := uint64(opts.From) - 1
	var from kurrentdb.AllPosition = kurrentdb.Position{Commit: before, Prepare: before}
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
			interval := opts.CheckpointEveryEvents
			if interval == 0 {
				interval = annals.DefaultCheckpointEveryEvents
			}
			o.MaxSearchWindow, o.CheckpointInterval = int(min(interval, 1<<20)), 1
		}
		sub, err := s.client.SubscribeToAll(ctx, o)
		s.follow(call{ctx: ctx, stream: annals.AllStream}, sub, err, yield)
	}
}

// follow relays a client subscription until the consumer stops, ctx ends
// or the server drops it.
func (s *Store) follow(c call, sub *kurrentdb.Subscription, err error, yield func(annals.Message, error) bool) {
	if err != nil {
		yield(annals.Message{}, s.fromError(c, err))
		return
	}
	defer sub.Close()
	for {
		m := sub.Recv()
		var msg annals.Message
		switch {
		case m.SubscriptionDropped != nil:
			yield(annals.Message{}, s.fromError(c, m.SubscriptionDropped.Error))
			return
		case m.EventAppeared != nil:
			msg = annals.Message{Kind: annals.MessageEvent, Event: toEvent(m.EventAppeared.OriginalEvent())}
		case m.CheckPointReached != nil:
			msg = annals.Message{Kind: annals.MessageCheckpoint, Position: annals.Position(m.CheckPointReached.Commit)}
		case m.CaughtUp != nil:
			msg = annals.Message{Kind: annals.MessageCaughtUp}
			if p := m.CaughtUp.Position; p != nil {
				msg.Position = annals.Position(p.Commit)
			}
		default:
			continue
		}
		if !yield(msg, nil) {
			return
		}
	}
}

// nameLimits checks the names this side checks itself: the metadata
// calls, whose metastream's name would pass where the stream's does not.
var nameLimits = annals.Limits{}.WithDefaults()
