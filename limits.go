package annals

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"unicode/utf8"
)

// Default limits. Each store takes Limits in its options; zero fields take
// these defaults.
const (
	DefaultMaxStreamNameBytes = 1024
	DefaultMaxEventTypeBytes  = 256
	DefaultMaxEventSizeBytes  = 1 << 20 // data + metadata + type of one event
	DefaultMaxAppendSizeBytes = 8 << 20 // all events of one append
	DefaultMaxAppendEvents    = 10_000
	DefaultReadBatchEvents    = 256   // events a read or subscription fetches at once
	DefaultMaxAppendStreams   = 1_000 // streams one MultiAppend writes
	DefaultMaxAppendChecks    = 1_000 // checks one MultiAppend carries
	maxContentTypeBytes       = 128
)

// Limits bound what one call may ask of a store.
type Limits struct {
	MaxStreamNameBytes int
	MaxEventTypeBytes  int
	MaxEventSizeBytes  int
	MaxAppendSizeBytes int
	MaxAppendEvents    int
	// MaxAppendStreams bounds the streams one MultiAppend writes and
	// MaxAppendChecks its checks; its events and bytes count, all streams
	// together, against MaxAppendEvents and MaxAppendSizeBytes.
	MaxAppendStreams int
	MaxAppendChecks  int
	// AllowSystemStreams lets appends write $-prefixed streams and event
	// types. The rule, as in KurrentDB (where admins write system
	// streams): writing them is the store administrator's act. Whoever
	// administers the store sets it: annals serve (its clients are the
	// admin, or anyone with --insecure) and the annals CLI, local or with
	// --server (whoever opens the store's directory owns it). An
	// application's zero Limits refuse them, so it cannot write into the
	// system's names by accident. Metadata is always writable through
	// SetStreamMetadata.
	AllowSystemStreams bool
}

// LimitsReporter is a Store that reports the Limits it enforces, with the
// defaults filled in. The stores of this module (memory, embedded,
// postgres, remote) are all one. What serves a store to others (package
// server) takes them, so that it refuses what the store would and sizes
// its messages for the largest append the store takes.
type LimitsReporter interface {
	Limits() Limits
}

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxStreamNameBytes, DefaultMaxStreamNameBytes)
	def(&l.MaxEventTypeBytes, DefaultMaxEventTypeBytes)
	def(&l.MaxEventSizeBytes, DefaultMaxEventSizeBytes)
	def(&l.MaxAppendSizeBytes, DefaultMaxAppendSizeBytes)
	def(&l.MaxAppendEvents, DefaultMaxAppendEvents)
	def(&l.MaxAppendStreams, DefaultMaxAppendStreams)
	def(&l.MaxAppendChecks, DefaultMaxAppendChecks)
	return l
}

// CheckStreamName validates a stream name for reading: non-empty, within
// the length limit, valid UTF-8 without control characters.
func (l Limits) CheckStreamName(stream string) error {
	if stream == "" {
		return invalid("stream", "name is empty")
	}
	if len(stream) > l.MaxStreamNameBytes {
		return invalid("stream", "name is %d bytes, at most %d", len(stream), l.MaxStreamNameBytes)
	}
	return checkText("stream", stream)
}

// CheckNewStreamName validates a stream name that a write would record:
// CheckStreamName, and none of the characters that can disguise a name
// (see disguising). Reads accept such names, so a stream recorded before
// the rule stays readable.
func (l Limits) CheckNewStreamName(stream string) error {
	if err := l.CheckStreamName(stream); err != nil {
		return err
	}
	return checkDisguise("stream", stream)
}

// CheckWritableStream validates a stream name for writing user events:
// CheckNewStreamName, and not $-prefixed unless AllowSystemStreams.
func (l Limits) CheckWritableStream(stream string) error {
	if err := l.CheckNewStreamName(stream); err != nil {
		return err
	}
	if stream == AllStream {
		return invalid("stream", "%s is the global log and cannot be written", AllStream)
	}
	if IsIndexStream(stream) {
		return invalid("stream", "%q is an index stream the store maintains; it cannot be written", stream)
	}
	if stream[0] == '$' && !l.AllowSystemStreams {
		return invalid("stream", "%q: names starting with '$' are reserved for the system", stream)
	}
	return nil
}

// CheckEvents validates the events of one append.
func (l Limits) CheckEvents(events []EventData) error {
	if len(events) > l.MaxAppendEvents {
		return tooLarge("events", "%d events in one append, at most %d", len(events), l.MaxAppendEvents)
	}
	total := 0
	for i := range events {
		size, err := l.checkEvent(fmt.Sprintf("event[%d]", i), &events[i])
		if err != nil {
			return err
		}
		total += size
	}
	if err := checkDistinctIDs(events); err != nil {
		return err
	}
	if total > l.MaxAppendSizeBytes {
		return tooLarge("events", "append is %d bytes, at most %d", total, l.MaxAppendSizeBytes)
	}
	return nil
}

// checkEvent validates one event, its fields named prefix.field, and
// returns its size.
func (l Limits) checkEvent(prefix string, e *EventData) (int, error) {
	field := func(f string) string { return prefix + "." + f }
	if e.Type == "" {
		return 0, invalid(field("type"), "is empty")
	}
	if len(e.Type) > l.MaxEventTypeBytes {
		return 0, invalid(field("type"), "is %d bytes, at most %d", len(e.Type), l.MaxEventTypeBytes)
	}
	if err := checkText(field("type"), e.Type); err != nil {
		return 0, err
	}
	if err := checkDisguise(field("type"), e.Type); err != nil {
		return 0, err
	}
	// A link ($>) is the one system type users write, as KurrentDB's
	// clients do: reads with ResolveLinks resolve it.
	if e.Type[0] == '$' && e.Type != EventTypeLink && !l.AllowSystemStreams {
		return 0, invalid(field("type"), "%q: types starting with '$' are reserved for the system", e.Type)
	}
	if len(e.ContentType) > maxContentTypeBytes {
		return 0, invalid(field("contentType"), "is %d bytes, at most %d", len(e.ContentType), maxContentTypeBytes)
	}
	if err := checkText(field("contentType"), e.ContentType); err != nil {
		return 0, err
	}
	if err := CheckTags(field("tags"), e.Tags); err != nil {
		return 0, err
	}
	size := EventSizeBytes(e)
	if size > l.MaxEventSizeBytes {
		return 0, tooLarge(field("size"), "event is %d bytes, at most %d", size, l.MaxEventSizeBytes)
	}
	return size, nil
}

// EventSizeBytes is the size an event counts against MaxEventSizeBytes.
func EventSizeBytes(e *EventData) int {
	n := len(e.Type) + len(e.Data) + len(e.Metadata)
	for _, t := range e.Tags {
		n += len(t)
	}
	return n
}

func checkDistinctIDs(events []EventData) error {
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i := range events {
		id := events[i].ID
		if id == (uuid.UUID{}) {
			continue
		}
		if _, dup := seen[id]; dup {
			return invalid(fmt.Sprintf("event[%d].id", i), "%s appears twice in one append", id)
		}
		seen[id] = struct{}{}
	}
	return nil
}

func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "contains control character %U", r)
		}
	}
	return nil
}

// disguising reports the characters that can make a name look like another
// one without being it: C1 controls, the bidirectional embeddings,
// overrides, isolates and marks (U+202E turns "order-\u202Efdp.exe" into
// what displays as "order-exe.pdf"), the line and paragraph separators,
// and the invisible formatting characters (zero-width spaces and joiners,
// the word joiner and invisible operators, the byte order mark, the soft
// hyphen).
func disguising(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r == 0xad, r == 0x61c, r == 0x180e: // soft hyphen, Arabic letter mark, Mongolian vowel separator
		return true
	case r >= 0x200b && r <= 0x200f: // zero-width space, non-joiner, joiner; LRM, RLM
		return true
	case r >= 0x2028 && r <= 0x202e: // line and paragraph separators; LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2060 && r <= 0x206f: // word joiner, invisible operators, isolates, deprecated format controls
		return true
	case r == 0xfeff: // zero-width no-break space (byte order mark)
		return true
	}
	return false
}

func checkDisguise(field, s string) error {
	for _, r := range s {
		if disguising(r) {
			return invalid(field, "contains %U, a character that can disguise a name", r)
		}
	}
	return nil
}

// CheckRecords validates the records of a MultiAppend as CheckEvents does
// one append's events, all streams together: one record's fields are named
// "record[i]". Ids must be distinct within each stream (ids are scoped to
// their stream).
func (l Limits) CheckRecords(records []Record) error {
	if len(records) == 0 {
		return invalid("records", "a multi-stream append needs at least one record")
	}
	if len(records) > l.MaxAppendEvents {
		return tooLarge("records", "%d records in one append, at most %d", len(records), l.MaxAppendEvents)
	}
	type streamID struct {
		stream string
		id     uuid.UUID
	}
	streams := map[string]struct{}{}
	ids := map[streamID]struct{}{}
	total := 0
	for i := range records {
		r := &records[i]
		if _, seen := streams[r.Stream]; !seen {
			if err := l.CheckWritableStream(r.Stream); err != nil {
				return renameField(err, "stream", fmt.Sprintf("record[%d].stream", i))
			}
			if _, meta := IsMetastream(r.Stream); meta {
				return invalid(fmt.Sprintf("record[%d].stream", i), "metadata is written with SetStreamMetadata, not in a multi-stream append")
			}
			streams[r.Stream] = struct{}{}
			if len(streams) > l.MaxAppendStreams {
				return tooLarge("records", "the append writes more than %d streams", l.MaxAppendStreams)
			}
		}
		size, err := l.checkEvent(fmt.Sprintf("record[%d]", i), &r.Event)
		if err != nil {
			return err
		}
		if r.Event.ID != (uuid.UUID{}) {
			k := streamID{r.Stream, r.Event.ID}
			if _, dup := ids[k]; dup {
				return invalid(fmt.Sprintf("record[%d].id", i), "%s appears twice in stream %q of one append", r.Event.ID, r.Stream)
			}
			ids[k] = struct{}{}
		}
		total += size
	}
	if total > l.MaxAppendSizeBytes {
		return tooLarge("records", "append is %d bytes, at most %d", total, l.MaxAppendSizeBytes)
	}
	return nil
}

// CheckChecks validates the checks of a MultiAppend: within the limit,
// streams named validly, each stream checked once.
func (l Limits) CheckChecks(checks []StreamCheck) error {
	if len(checks) > l.MaxAppendChecks {
		return tooLarge("checks", "%d checks in one append, at most %d", len(checks), l.MaxAppendChecks)
	}
	seen := make(map[string]struct{}, len(checks))
	for i, c := range checks {
		field := fmt.Sprintf("check[%d].stream", i)
		if err := l.CheckStreamName(c.Stream); err != nil {
			return renameField(err, "stream", field)
		}
		if _, dup := seen[c.Stream]; dup {
			return invalid(field, "%q is checked twice in one append", c.Stream)
		}
		if c.Expected.IsAny() {
			return invalid(fmt.Sprintf("check[%d].expected", i), "any is not a check: leave the stream out")
		}
		seen[c.Stream] = struct{}{}
	}
	return nil
}

// renameField returns err with its field prefix old replaced by new, so a
// rule written for one append names the record it found wrong.
func renameField(err error, old, new string) error {
	var ie *InvalidInputError
	if !errors.As(err, &ie) {
		return err
	}
	c := *ie
	if rest, ok := strings.CutPrefix(c.Field, old); ok {
		c.Field = new + rest
	}
	return &c
}
