package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/google/uuid"
)

// Storage layout. Every key starts with a one-byte table prefix; integers
// are big-endian so keys sort numerically.
//
//	'E' first position(8)           -> chunk: consecutive events of the log
//	'S' stream 0x00 revision(8)     -> position(8) chunk(8)  (stream index)
//	'H' stream                      -> head record  (exists, deleted, tombstoned)
//	'K' stream 0x00 event id(16)    -> position(8) chunk(8)  (idempotency index)
//	'V'                             -> format version(1)
//	'G' tag 0x00 position(8)        -> position(8) chunk(8) type  (tag index)
//
// Tags never contain 0x00 either (control characters are rejected), and
// the tag index carries the event's type, so a query item of one tag and
// some types is answered from the index alone.
// Format version 1 (no 'V' key) had an idempotency index of global ids,
// 'I' event id(16); Open rewrites it as 'K' keys (migrate.go).
// The log ($all) is stored in chunks: one key holds up to chunkEventsMax
// consecutive events (one group commit is cut into chunks). Scanning the
// log then costs one engine step per chunk, not per event, and a group
// commit inserts a few log keys instead of one per event. Index values
// carry the key of the chunk that holds the event, so a point read is one
// Get.
//
// Stream names never contain 0x00 (control characters are rejected), so the
// 'S' prefix of one stream is never a prefix of another's.
const (
	tableEvent  = 'E'
	tableStream = 'S'
	tableHead   = 'H'
	tableID     = 'K'
	tableTag    = 'G'
	// tableLegacyID is format 1's id index, removed by the migration.
	tableLegacyID = 'I'
	keyFormat     = 'V'
)

const (
	eventRecordVersion = 1
	// taggedRecordVersion is the record of an event with tags: version 1's
	// fields, then the tags before the data. Events without tags keep
	// version 1, so stores written before tags read as they were.
	taggedRecordVersion = 2
	chunkVersion        = 1
	// chunkEventsMax and chunkBytesMax bound one chunk: a point read
	// decodes one chunk's offset table and one record, but copies the
	// whole value out of the engine.
	chunkEventsMax = 64
	chunkBytesMax  = 64 << 10
)

func eventKey(pos annals.Position) []byte {
	k := make([]byte, 9)
	k[0] = tableEvent
	binary.BigEndian.PutUint64(k[1:], uint64(pos))
	return k
}

func appendStreamPrefix(b []byte, stream string) []byte {
	b = append(b, tableStream)
	b = append(b, stream...)
	return append(b, 0)
}

func streamPrefix(stream string) []byte {
	return appendStreamPrefix(make([]byte, 0, len(stream)+2+8), stream)
}

func appendStreamKey(b []byte, stream string, rev annals.Revision) []byte {
	return binary.BigEndian.AppendUint64(appendStreamPrefix(b, stream), uint64(rev))
}

func streamKey(stream string, rev annals.Revision) []byte {
	return appendStreamKey(make([]byte, 0, len(stream)+2+8), stream, rev)
}

func headKey(stream string) []byte {
	k := make([]byte, 0, len(stream)+1)
	k = append(k, tableHead)
	return append(k, stream...)
}

// An id key is scoped to its stream: ids are unique per stream only, as in
// KurrentDB. The stream comes first, so one stream's ids share a prefix.
func appendIDKey(b []byte, stream string, id uuid.UUID) []byte {
	b = append(b, tableID)
	b = append(b, stream...)
	b = append(b, 0)
	return append(b, id[:]...)
}

func idKey(stream string, id uuid.UUID) []byte {
	return appendIDKey(make([]byte, 0, len(stream)+18), stream, id)
}

// parseIDKey splits an id key; stream shares k's memory.
func parseIDKey(k []byte) (stream []byte, id uuid.UUID, err error) {
	if len(k) < 1+1+1+16 || k[0] != tableID || k[len(k)-17] != 0 {
		return nil, id, errCorrupt("id index key")
	}
	return k[1 : len(k)-17], uuid.UUID(k[len(k)-16:]), nil
}

func decodePosition(v []byte) (annals.Position, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("embedded: corrupt position value (%d bytes)", len(v))
	}
	return annals.Position(binary.BigEndian.Uint64(v)), nil
}

// decodeRevision decodes the revision that ends a stream index key.
func decodeRevision(v []byte) (annals.Revision, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("embedded: corrupt revision value (%d bytes)", len(v))
	}
	return annals.Revision(binary.BigEndian.Uint64(v)), nil
}

// An index value locates an event: its position and its chunk's key, the
// position of the chunk's first event.
func appendLocation(b []byte, pos, chunk annals.Position) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, uint64(pos)), uint64(chunk))
}

func decodeLocation(v []byte) (pos, chunk annals.Position, err error) {
	if len(v) != 16 || binary.BigEndian.Uint64(v[8:]) > binary.BigEndian.Uint64(v) {
		return 0, 0, errCorrupt("index value")
	}
	return annals.Position(binary.BigEndian.Uint64(v)), annals.Position(binary.BigEndian.Uint64(v[8:])), nil
}

// Chunk value: version(1) count(uvarint) offsets(count x uint32, relative
// to the records) records. Event i of the chunk has position first+i.
func appendChunk(b []byte, events []*annals.Event) []byte {
	b = append(b, chunkVersion)
	b = binary.AppendUvarint(b, uint64(len(events)))
	table := len(b)
	b = append(b, make([]byte, 4*len(events))...)
	base := len(b)
	for i, e := range events {
		binary.BigEndian.PutUint32(b[table+4*i:], uint32(len(b)-base))
		b = appendEvent(b, e)
	}
	return b
}

// chunk is a parsed chunk value; it shares the value's memory.
type chunk struct {
	first   annals.Position
	n       int
	table   []byte
	records []byte
}

func parseChunk(first annals.Position, v []byte) (chunk, error) {
	if len(v) < 2 || v[0] != chunkVersion {
		return chunk{}, errCorrupt("chunk header")
	}
	n, k := binary.Uvarint(v[1:])
	if k <= 0 || n == 0 || n > uint64(len(v)) {
		return chunk{}, errCorrupt("chunk count")
	}
	start := 1 + k
	if len(v) < start+4*int(n) {
		return chunk{}, errCorrupt("chunk offsets")
	}
	return chunk{first: first, n: int(n), table: v[start : start+4*int(n)], records: v[start+4*int(n):]}, nil
}

func (c chunk) last() annals.Position { return c.first + annals.Position(c.n) - 1 }

func (c chunk) contains(pos annals.Position) bool { return pos >= c.first && pos <= c.last() }

// record returns the encoded event at pos, which the chunk must contain.
func (c chunk) record(pos annals.Position) ([]byte, error) {
	i := int(pos - c.first)
	from := int(binary.BigEndian.Uint32(c.table[4*i:]))
	to := len(c.records)
	if i+1 < c.n {
		to = int(binary.BigEndian.Uint32(c.table[4*i+4:]))
	}
	if from > to || to > len(c.records) {
		return nil, errCorrupt("chunk offsets")
	}
	return c.records[from:to:to], nil
}

// event decodes the event at pos; it shares the chunk's memory, which the
// caller must own.
func (c chunk) event(pos annals.Position) (annals.Event, error) {
	rec, err := c.record(pos)
	if err != nil {
		return annals.Event{}, err
	}
	return decodeEvent(pos, rec)
}

// Head record: flags(1) lastRevision(uvarint) lastPosition(uvarint).
//
// A stream's last revision and position come from the last key of its
// 'S' range; the head record is only written when a stream is created,
// deleted, tombstoned or brought back, so a plain append writes no head
// (one fewer random insert per append). Its LastPosition is the position
// of that change. Every stream has one, so a point lookup (bloom-filtered)
// tells a new stream without seeking the index.
const (
	headExists byte = 1 << iota
	headSoftDeleted
	headTombstoned
)

func encodeHead(s core.StreamState) []byte {
	var f byte
	if s.Exists {
		f |= headExists
	}
	if s.SoftDeleted {
		f |= headSoftDeleted
	}
	if s.Tombstoned {
		f |= headTombstoned
	}
	b := make([]byte, 1, 1+2*binary.MaxVarintLen64)
	b[0] = f
	b = binary.AppendUvarint(b, uint64(s.LastRevision))
	return binary.AppendUvarint(b, uint64(s.LastPosition))
}

func decodeHead(b []byte) (core.StreamState, error) {
	if len(b) < 3 {
		return core.StreamState{}, errCorrupt("head record")
	}
	s := core.StreamState{Exists: b[0]&headExists != 0, SoftDeleted: b[0]&headSoftDeleted != 0, Tombstoned: b[0]&headTombstoned != 0}
	rev, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return core.StreamState{}, errCorrupt("head record")
	}
	pos, m := binary.Uvarint(b[1+n:])
	if m <= 0 {
		return core.StreamState{}, errCorrupt("head record")
	}
	s.LastRevision, s.LastPosition = annals.Revision(rev), annals.Position(pos)
	return s, nil
}

// Event record:
//
//	version(1) id(16) recorded-unix-nanos(8) revision(uvarint)
//	len+stream len+type len+contentType len+metadata data(rest)
func appendEvent(b []byte, e *annals.Event) []byte {
	version := byte(eventRecordVersion)
	if len(e.Tags) > 0 {
		version = taggedRecordVersion
	}
	b = append(b, version)
	b = append(b, e.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Recorded.UnixNano()))
	b = binary.AppendUvarint(b, uint64(e.Revision))
	for _, s := range [...]string{e.Stream, e.Type, e.ContentType} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Metadata)))
	b = append(b, e.Metadata...)
	if version == taggedRecordVersion {
		// Version 2: count(uvarint) len+tag..., then the data.
		b = binary.AppendUvarint(b, uint64(len(e.Tags)))
		for _, t := range e.Tags {
			b = binary.AppendUvarint(b, uint64(len(t)))
			b = append(b, t...)
		}
	}
	return append(b, e.Data...)
}

func eventRecordSize(e *annals.Event) int {
	n := 1 + 16 + 8 + 5*binary.MaxVarintLen64 + len(e.Stream) + len(e.Type) + len(e.ContentType) + len(e.Metadata) + len(e.Data)
	for _, t := range e.Tags {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

// appendTagKey appends the tag index key of tag at pos.
func appendTagKey(b []byte, tag string, pos annals.Position) []byte {
	b = append(b, tableTag)
	b = append(b, tag...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, uint64(pos))
}

// tagPrefix is the prefix of tag's index keys.
func tagPrefix(tag string) []byte {
	return append(append([]byte{tableTag}, tag...), 0)
}

// decodeTagEntry decodes a tag index entry: the event's position, its
// chunk's key and its type (sharing v's memory).
func decodeTagEntry(v []byte) (pos, chunk annals.Position, typ []byte, err error) {
	if len(v) < 16 {
		return 0, 0, nil, errCorrupt("tag index entry")
	}
	pos, chunk, err = decodeLocation(v[:16])
	return pos, chunk, v[16:], err
}

// chunkSplits cuts events (in position order) into chunks within the
// bounds; it returns the end index of each chunk.
func chunkSplits(events []*annals.Event) []int {
	var ends []int
	n, bytes := 0, 0
	for i, e := range events {
		size := eventRecordSize(e)
		if n > 0 && (n == chunkEventsMax || bytes+size > chunkBytesMax) {
			ends = append(ends, i)
			n, bytes = 0, 0
		}
		n++
		bytes += size
	}
	if n > 0 {
		ends = append(ends, len(events))
	}
	return ends
}

// decodeEvent decodes a record it owns: the event's strings and byte slices
// point into rec, which must never be modified afterwards. One allocation
// (the caller's copy of the value) serves the whole event.
func decodeEvent(pos annals.Position, rec []byte) (annals.Event, error) {
	e := annals.Event{Position: pos}
	if len(rec) < 1+16+8 || (rec[0] != eventRecordVersion && rec[0] != taggedRecordVersion) {
		return e, errCorrupt("event record")
	}
	copy(e.ID[:], rec[1:17])
	e.Recorded = time.Unix(0, int64(binary.BigEndian.Uint64(rec[17:25]))).UTC()
	r := rec[25:]
	rev, n := binary.Uvarint(r)
	if n <= 0 {
		return e, errCorrupt("event record")
	}
	e.Revision = annals.Revision(rev)
	r = r[n:]
	var fields [4][]byte
	for i := range fields {
		l, n := binary.Uvarint(r)
		if n <= 0 || uint64(len(r)-n) < l {
			return e, errCorrupt("event record")
		}
		fields[i] = r[n : n+int(l) : n+int(l)]
		r = r[n+int(l):]
	}
	e.Stream = bytesToString(fields[0])
	e.Type = bytesToString(fields[1])
	e.ContentType = internContentType(fields[2])
	if len(fields[3]) > 0 {
		e.Metadata = fields[3]
	}
	if rec[0] == taggedRecordVersion {
		var err error
		if e.Tags, r, err = decodeTags(r); err != nil {
			return e, err
		}
	}
	if len(r) > 0 {
		e.Data = r
	}
	return e, nil
}

// decodeTags decodes a version 2 record's tags and returns the rest.
func decodeTags(r []byte) ([]string, []byte, error) {
	count, n := binary.Uvarint(r)
	if n <= 0 || count > uint64(len(r)) {
		return nil, nil, errCorrupt("event record tags")
	}
	r = r[n:]
	tags := make([]string, count)
	for i := range tags {
		l, n := binary.Uvarint(r)
		if n <= 0 || uint64(len(r)-n) < l {
			return nil, nil, errCorrupt("event record tags")
		}
		tags[i] = bytesToString(r[n : n+int(l)])
		r = r[n+int(l):]
	}
	return tags, r, nil
}

// bytesToString shares b's memory; b is an immutable copy owned by the event.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func internContentType(b []byte) string {
	switch string(b) {
	case annals.ContentTypeJSON:
		return annals.ContentTypeJSON
	case annals.ContentTypeBinary:
		return annals.ContentTypeBinary
	}
	return string(b)
}

var errCorruption = errors.New("embedded: corrupt record")

func errCorrupt(what string) error { return fmt.Errorf("%w: %s", errCorruption, what) }
