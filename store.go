package annals

import (
	"context"
	"iter"
)

// Store is the book of record. Every backend implements it and passes the
// conformance suite (package storetest). All methods are safe for concurrent
// use.
//
// Reads and subscriptions only ever show durable events: an event is visible
// once, and only once, its append has been acknowledged or is about to be.
type Store interface {
	// Append writes events to the end of stream if the stream is in the
	// expected state: all of them or none. Zero events only check the
	// expectation. Re-appending the same event ids at the same place (a
	// retry after a lost acknowledgement) returns the original result and
	// writes nothing.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events ...EventData) (AppendResult, error)

	// AppendMulti writes the records of m to their streams if every check
	// of m holds: all records or none, at consecutive positions of $all in
	// the order given (see MultiAppend). Failed checks give a
	// *ConsistencyError naming each one; a tombstoned stream among those
	// written gives ErrStreamDeleted. Re-appending the same record ids,
	// all of them, at the place they already occupy is an idempotent retry
	// as for Append.
	AppendMulti(ctx context.Context, m MultiAppend) (MultiAppendResult, error)

	// ReadStream reads one stream, honouring its metadata (max count, max
	// age, truncate-before). A missing or soft-deleted stream yields
	// ErrStreamNotFound; a tombstoned one ErrStreamDeleted.
	ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) iter.Seq2[Event, error]

	// ReadAll reads the global log, every event of every stream, optionally
	// filtered. Stream metadata does not hide events here: $all is the
	// complete record.
	ReadAll(ctx context.Context, opts ReadAllOptions) iter.Seq2[Event, error]

	// ReadQuery reads the events q matches, of every stream, in global
	// order (dynamic consistency boundaries: see Query). Stream metadata
	// does not hide events here, as in ReadAll. A decision reads with it,
	// then appends with a Condition on the same query after the last
	// position it read.
	ReadQuery(ctx context.Context, q Query, opts ReadQueryOptions) iter.Seq2[Event, error]

	// Delete soft-deletes stream: reads say not found, and the stream can be
	// written again (its revisions continue).
	Delete(ctx context.Context, stream string, expected ExpectedRevision) (DeleteResult, error)

	// Tombstone deletes stream forever: every later read or write of it
	// fails with ErrStreamDeleted.
	Tombstone(ctx context.Context, stream string, expected ExpectedRevision) (DeleteResult, error)

	// StreamMetadata returns the metadata of stream and the revision of its
	// metastream ($$stream), NoStream if none was ever set.
	StreamMetadata(ctx context.Context, stream string) (StreamMetadata, ExpectedRevision, error)

	// SetStreamMetadata appends new metadata to $$stream; expected applies
	// to the metastream.
	SetStreamMetadata(ctx context.Context, stream string, expected ExpectedRevision, md StreamMetadata) (AppendResult, error)

	// SubscribeToStream delivers stream's events from opts.From, then follows
	// live. It ends only on error or when ctx is done (the error is then
	// ctx.Err()).
	SubscribeToStream(ctx context.Context, stream string, opts SubscribeStreamOptions) iter.Seq2[Message, error]

	// SubscribeToAll delivers the global log from opts.From, filtered, then
	// follows live, with checkpoints so filtered consumers can save progress.
	SubscribeToAll(ctx context.Context, opts SubscribeAllOptions) iter.Seq2[Message, error]

	// Close stops the store. Calls in flight and later fail with ErrClosed;
	// acknowledged appends are durable.
	Close() error
}

// AppendResult describes a successful append.
type AppendResult struct {
	// NextExpected is what to pass as the expected revision of the next
	// append: Exact(last revision), or NoStream for an empty stream.
	NextExpected ExpectedRevision
	// FirstPosition and LastPosition are the global positions of the first
	// and last events appended; both 0 when no event was appended.
	FirstPosition, LastPosition Position
}

// DeleteResult gives the position of the record of the deletion in the
// global log.
type DeleteResult struct {
	Position Position
}

// Direction of a read.
type Direction uint8

const (
	Forwards Direction = iota
	Backwards
)

// ReadStreamOptions select part of a stream.
type ReadStreamOptions struct {
	Direction Direction
	// From is the first revision to read, inclusive: Start (the default) or
	// End, or any revision.
	From Revision
	// Limit caps the number of events; 0 means no limit.
	Limit uint64
	// ResolveLinks answers each link event ($>) with the event it points
	// at, the link in its Link field, as KurrentDB's resolveLinkTos; a
	// link whose event is gone (deleted, truncated, expired) is answered
	// as itself.
	ResolveLinks bool
}

// ReadAllOptions select part of the global log.
type ReadAllOptions struct {
	Direction Direction
	// From is the first position to read, inclusive: Start (the default) or
	// End, or any position.
	From Position
	// Limit caps the number of events yielded (after filtering); 0 means
	// no limit.
	Limit uint64
	// Filter, if not nil, yields only matching events. It looks at the
	// events as recorded in $all (a link, not what it points at).
	Filter *Filter
	// ResolveLinks: as in ReadStreamOptions.
	ResolveLinks bool
}

// SubscribeStreamOptions say where a stream subscription starts.
type SubscribeStreamOptions struct {
	// From is the first revision to deliver, inclusive: Start, End (only
	// events appended after the subscription starts) or a revision. To
	// resume after a checkpoint r, pass After(r).
	From Revision
	// ResolveLinks: as in ReadStreamOptions.
	ResolveLinks bool
}

// SubscribeAllOptions say where an $all subscription starts and what it
// delivers.
type SubscribeAllOptions struct {
	// From is the first position to deliver, inclusive: Start, End or a
	// position. To resume after a checkpoint p, pass After(p).
	From Position
	// Filter, if not nil, delivers only matching events.
	Filter *Filter
	// ResolveLinks: as in ReadStreamOptions.
	ResolveLinks bool
	// CheckpointEveryEvents is how many events of the log the subscription
	// reads, matching or not, between checkpoints (as KurrentDB counts
	// them); one more comes when it catches up. 0 means
	// DefaultCheckpointEveryEvents. Checkpoints are only sent with a filter.
	CheckpointEveryEvents uint64
}

// DefaultCheckpointEveryEvents is the checkpoint interval, in events read,
// of filtered subscriptions when none is given.
const DefaultCheckpointEveryEvents = 1024

// MessageKind tells what a subscription message carries.
type MessageKind uint8

const (
	// MessageEvent carries an event.
	MessageEvent MessageKind = iota + 1
	// MessageCheckpoint carries a position the consumer may save: every
	// matching event up to and including it has been delivered.
	MessageCheckpoint
	// MessageCaughtUp says the subscription has delivered all history and is
	// now live. Sent once.
	MessageCaughtUp
)

// Message is what a subscription delivers.
type Message struct {
	Kind  MessageKind
	Event Event // MessageEvent
	// Position is the checkpoint (MessageCheckpoint), or the last position
	// known to the store when the subscription caught up (MessageCaughtUp).
	Position Position
}
