package annals

import (
	"strconv"
	"strings"
)

// Link event types, as KurrentDB writes them.
const (
	// EventTypeLink is the type of a link event: its data is
	// "revision@stream", the event it points at. Reads with ResolveLinks
	// answer the event pointed at, with the link beside it (Event.Link).
	EventTypeLink = "$>"
	// EventTypeStreamReference is the type of the events of a
	// $category- stream: its data is the name of a stream. It is not
	// resolved.
	EventTypeStreamReference = "$@"
)

// Index streams: KurrentDB's system projections $by_category,
// $by_event_type, $streams and $stream_by_category write link events
// into them. Annals stores no such events: the stores keep secondary
// indexes, written in the same atomic write as the events, and answer
// reads of these streams with the link events KurrentDB would have
// written (see docs/indexes.md).
const (
	// CategoryStreamPrefix + category: a link to each event of the
	// category's streams (and each tombstone), in the order of $all.
	CategoryStreamPrefix = "$ce-"
	// EventTypeStreamPrefix + type: a link to each event of the type
	// ($> links excepted), in the order of $all; tombstones are in
	// $et-$deleted.
	EventTypeStreamPrefix = "$et-"
	// StreamsStream: a link to the first event of every stream.
	StreamsStream = "$streams"
	// StreamsOfCategoryPrefix + category: a $@ event naming each stream
	// of the category, in the order the streams were created.
	StreamsOfCategoryPrefix = "$category-"
)

// CategoryStream returns the name of category's index stream, "$ce-" +
// category.
func CategoryStream(category string) string { return CategoryStreamPrefix + category }

// EventTypeStream returns the name of the index stream of an event type,
// "$et-" + type.
func EventTypeStream(eventType string) string { return EventTypeStreamPrefix + eventType }

// IsIndexStream reports whether stream is one the stores maintain from
// their indexes. Such streams are read, subscribed to and given metadata
// like any other; appends to them are refused.
func IsIndexStream(stream string) bool {
	if stream == StreamsStream {
		return true
	}
	for _, p := range [...]string{CategoryStreamPrefix, EventTypeStreamPrefix, StreamsOfCategoryPrefix} {
		if len(stream) > len(p) && strings.HasPrefix(stream, p) {
			return true
		}
	}
	return false
}

// IndexedCategory returns the category KurrentDB's $by_category gives a
// stream: the name up to its first '-', if that is not the first
// character; a name starting with '$' (a system stream) has none.
func IndexedCategory(stream string) (string, bool) {
	if stream == "" || stream[0] == '$' {
		return "", false
	}
	i := strings.IndexByte(stream, '-')
	if i <= 0 {
		return "", false
	}
	return stream[:i], true
}

// LinkData returns the data of a link to the event at revision of stream.
func LinkData(stream string, revision Revision) []byte {
	return append(strconv.AppendUint(nil, uint64(revision), 10), append([]byte{'@'}, stream...)...)
}

// ParseLink reads the data of a link event: the stream and revision it
// points at.
func ParseLink(data []byte) (stream string, revision Revision, ok bool) {
	s := string(data)
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(s[:at], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return s[at+1:], Revision(n), true
}
