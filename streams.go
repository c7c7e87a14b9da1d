package annals

import "context"

// Bounds of ListStreamsOptions.Limit.
const (
	// DefaultListStreamsLimit is the page size of a listing that gives no
	// Limit.
	DefaultListStreamsLimit = 100
	// MaxListStreamsLimit bounds one page: a listing is answered whole, so
	// the page is what the store holds in memory for it.
	MaxListStreamsLimit = 1000
)

// StreamInfo describes a stream that has, or had, events: its head as the
// store's reads see it.
type StreamInfo struct {
	Name string
	// LastRevision is the revision of the stream's last event. A soft
	// delete keeps it (a later append continues from it); a stream
	// tombstoned before it had any event has 0.
	LastRevision Revision
	// LastPosition is the global position of the last change to the
	// stream: its last event, or the record of its deletion (the
	// DeleteResult's Position). Metadata writes are not changes of the
	// stream itself.
	LastPosition Position
	// Deleted: soft-deleted, reads say not found until it is written again.
	Deleted bool
	// Tombstoned: deleted for good.
	Tombstoned bool
}

// ListStreamsOptions select one page of a listing.
type ListStreamsOptions struct {
	// Prefix, if not empty, keeps the names that start with it, compared
	// byte for byte (no wildcards). A category in the KurrentDB sense (its
	// $ce- streams, see Category) is the prefix up to and including the
	// first '-': "order-" lists the streams of category "order".
	Prefix string
	// After is the cursor: only names greater than it (in byte order) are
	// listed. To read the next page, pass the Name of the last StreamInfo
	// of this one.
	After string
	// Limit caps the page; 0 means DefaultListStreamsLimit. More than
	// MaxListStreamsLimit, or a negative one, is invalid input.
	Limit int
}

// StreamLister is a Store that can list its streams: package memory,
// embedded and postgres are; package remote is not (the KurrentDB
// protocol has no such call).
//
// ListStreams returns the streams whose name starts with opts.Prefix and
// is greater than opts.After, in ascending byte order of their names, at
// most opts.Limit of them. A page shorter than the limit is the last one.
// Metastreams ($$stream) are not listed: their stream's entry stands for
// them. The listing shows what reads show: nothing half-written, only
// state that is durable (as ReadStream sees it), so a stream is listed
// once an append to it is acknowledged or about to be. Each page is read
// at one moment, and streams are never unlisted (deleted ones stay, with
// their flag set): paging through a store that is being written lists
// every stream that existed when it began exactly once, and a stream
// created meanwhile if its name sorts after the page then being read.
type StreamLister interface {
	ListStreams(ctx context.Context, opts ListStreamsOptions) ([]StreamInfo, error)
}

// Validate rejects, with an error matching ErrInvalidInput, a Limit out of
// range and a Prefix or After that is not text as stream names are
// (valid UTF-8 without control characters). Stores call it; a caller
// need not.
func (o ListStreamsOptions) Validate() error {
	if o.Limit < 0 || o.Limit > MaxListStreamsLimit {
		return invalid("limit", "%d streams in one page, at most %d", o.Limit, MaxListStreamsLimit)
	}
	if err := checkText("prefix", o.Prefix); err != nil {
		return err
	}
	return checkText("after", o.After)
}

// PageSize is Limit, or DefaultListStreamsLimit when Limit is 0.
func (o ListStreamsOptions) PageSize() int {
	if o.Limit == 0 {
		return DefaultListStreamsLimit
	}
	return o.Limit
}
