package embedded_test

import (
	"bytes"
	"encoding/json"
	"iter"
	"slices"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// oracle is the store's semantics written out naively, for the
// differential test: a log and the streams' revisions in slices, every
// rule decided by scanning them. It shares nothing with the stores (no
// internal/core), so a planning bug that both stores inherit from core
// shows as a disagreement with it. It keeps only what the differential
// test exercises: caller-supplied ids, valid input, one writer.
//
// The rules, from the design (docs/design.md, "The event model") and the
// conformance suite:
//   - an expectation: Any always; NoStream when the stream shows no events
//     (never written, or soft-deleted); StreamExists when it does;
//     Exact(r) when r is the revision of its last event, deleted or not;
//     a tombstoned stream refuses every write (ErrStreamDeleted);
//   - ids are scoped to their stream; an append whose ids are all
//     recorded there, as one run in order, is a retry (the original
//     answer, nothing written) unless Exact names another place than just
//     before the run; any other recorded id is a DuplicateEventError;
//   - a soft delete writes $tb = deleted to the metastream; the next
//     append writes $tb = its first revision before its events; deleting
//     a stream never written, without metadata, is a wrong expectation;
//   - a tombstone is a $streamDeleted event at RevisionTombstone;
//   - reads show revisions at or after $tb, the last $maxCount, recorded
//     within $maxAge of the read.
type oracle struct {
	log     []annals.Event // position p at index p-1
	streams map[string]*oracleStream
	last    time.Time // recorded times never go backwards
}

type oracleStream struct {
	positions  []annals.Position // revision r at index r
	deleted    bool              // soft-deleted since its last append
	tombstoned bool
}

func newOracle() *oracle { return &oracle{streams: map[string]*oracleStream{}} }

func (o *oracle) stream(name string) *oracleStream {
	if o.streams[name] == nil {
		o.streams[name] = &oracleStream{}
	}
	return o.streams[name]
}

func (s *oracleStream) written() bool { return len(s.positions) > 0 }
func (s *oracleStream) shows() bool   { return s.written() && !s.deleted && !s.tombstoned }

func (s *oracleStream) actual() annals.ExpectedRevision {
	if !s.shows() {
		return annals.NoStream
	}
	return annals.Exact(annals.Revision(len(s.positions) - 1))
}

func (o *oracle) expect(name string, exp annals.ExpectedRevision) error {
	s := o.stream(name)
	if s.tombstoned {
		return annals.StreamDeleted(name)
	}
	ok := exp.IsAny()
	if exp.IsNoStream() {
		ok = !s.shows()
	}
	if exp.IsStreamExists() {
		ok = s.shows()
	}
	if r, exact := exp.Revision(); exact {
		ok = s.written() && annals.Revision(len(s.positions)-1) == r
	}
	if !ok {
		return &annals.WrongExpectedRevisionError{Stream: name, Expected: exp, Actual: s.actual()}
	}
	return nil
}

// record adds an event to the log (and to its stream, unless a
// tombstone) and returns its position.
func (o *oracle) record(name string, e annals.EventData, now time.Time) annals.Position {
	s := o.stream(name)
	rev := annals.Revision(len(s.positions))
	if e.Type == annals.EventTypeStreamDeleted {
		rev = annals.RevisionTombstone
	}
	if e.ID == (uuid.UUID{}) {
		e.ID = uuid.New()
	}
	if e.ContentType == "" {
		e.ContentType = annals.ContentTypeJSON
	}
	pos := annals.Position(len(o.log) + 1)
	o.log = append(o.log, annals.Event{
		ID: e.ID, Stream: name, Type: e.Type, ContentType: e.ContentType,
		Data: bytes.Clone(e.Data), Metadata: bytes.Clone(e.Metadata),
		Recorded: now, Revision: rev, Position: pos,
	})
	if rev != annals.RevisionTombstone {
		s.positions = append(s.positions, pos)
	}
	return pos
}

func (o *oracle) now(clock func() time.Time) time.Time {
	if now := clock().UTC(); now.After(o.last) {
		o.last = now
	}
	return o.last
}

// metadata is the stream's latest metadata (zero if none).
func (o *oracle) metadata(name string) annals.StreamMetadata {
	ms := o.stream(annals.MetastreamOf(name))
	if !ms.written() {
		return annals.StreamMetadata{}
	}
	md, err := annals.ParseStreamMetadata(o.log[ms.positions[len(ms.positions)-1]-1].Data)
	if err != nil {
		panic(err)
	}
	return md
}

func (o *oracle) writeMetadata(name string, md annals.StreamMetadata, now time.Time) annals.Position {
	data, err := json.Marshal(md)
	if err != nil {
		panic(err)
	}
	return o.record(annals.MetastreamOf(name), annals.EventData{Type: annals.EventTypeMetadata, Data: data}, now)
}

func (o *oracle) Append(name string, exp annals.ExpectedRevision, events []annals.EventData, clock func() time.Time) (annals.AppendResult, error) {
	s := o.stream(name)
	found := make([]int, len(events)) // revision where each id is recorded, or -1
	nFound := 0
	for i, e := range events {
		found[i] = -1
		for r, p := range s.positions {
			if o.log[p-1].ID == e.ID {
				found[i] = r
				nFound++
			}
		}
	}
	if nFound == 0 {
		if err := o.expect(name, exp); err != nil {
			return annals.AppendResult{}, err
		}
	} else {
		return o.repeated(name, exp, events, found)
	}
	if len(events) == 0 {
		return annals.AppendResult{NextExpected: s.actual()}, nil
	}
	now := o.now(clock)
	if s.deleted {
		md := o.metadata(name)
		md.TruncateBefore = annals.Revision(len(s.positions))
		o.writeMetadata(name, md, now)
		s.deleted = false
	}
	var first, last annals.Position
	for i, e := range events {
		last = o.record(name, e, now)
		if i == 0 {
			first = last
		}
	}
	return annals.AppendResult{NextExpected: annals.Exact(annals.Revision(len(s.positions) - 1)), FirstPosition: first, LastPosition: last}, nil
}

// repeated answers an append some of whose ids are recorded in the
// stream: the retry's original answer, or the duplicate.
func (o *oracle) repeated(name string, exp annals.ExpectedRevision, events []annals.EventData, found []int) (annals.AppendResult, error) {
	s := o.stream(name)
	if s.tombstoned {
		return annals.AppendResult{}, annals.StreamDeleted(name)
	}
	run := found[0] >= 0
	for i := range found {
		run = run && found[i] == found[0]+i
	}
	if r, exact := exp.Revision(); run && exact && (found[0] == 0 || r != annals.Revision(found[0]-1)) {
		run = false
	}
	if run {
		lastRev := found[len(found)-1]
		return annals.AppendResult{NextExpected: annals.Exact(annals.Revision(lastRev)),
			FirstPosition: s.positions[found[0]], LastPosition: s.positions[lastRev]}, nil
	}
	for i := range found {
		if found[i] >= 0 {
			return annals.AppendResult{}, &annals.DuplicateEventError{ID: events[i].ID, Stream: name, Revision: annals.Revision(found[i])}
		}
	}
	panic("unreachable: some id is recorded")
}

func (o *oracle) Delete(name string, exp annals.ExpectedRevision, clock func() time.Time) (annals.DeleteResult, error) {
	if err := o.expect(name, exp); err != nil {
		return annals.DeleteResult{}, err
	}
	s := o.stream(name)
	if !s.written() && !o.stream(annals.MetastreamOf(name)).written() {
		return annals.DeleteResult{}, &annals.WrongExpectedRevisionError{Stream: name, Expected: exp, Actual: annals.NoStream}
	}
	if !s.shows() {
		return annals.DeleteResult{}, nil
	}
	md := o.metadata(name)
	md.TruncateBefore = annals.TruncateBeforeDeleted
	pos := o.writeMetadata(name, md, o.now(clock))
	s.deleted = true
	return annals.DeleteResult{Position: pos}, nil
}

func (o *oracle) Tombstone(name string, exp annals.ExpectedRevision, clock func() time.Time) (annals.DeleteResult, error) {
	if err := o.expect(name, exp); err != nil {
		return annals.DeleteResult{}, err
	}
	pos := o.record(name, annals.EventData{Type: annals.EventTypeStreamDeleted, ContentType: annals.ContentTypeBinary}, o.now(clock))
	o.stream(name).tombstoned = true
	return annals.DeleteResult{Position: pos}, nil
}

func (o *oracle) SetStreamMetadata(name string, exp annals.ExpectedRevision, md annals.StreamMetadata, clock func() time.Time) (annals.AppendResult, error) {
	meta := annals.MetastreamOf(name)
	if err := o.expect(meta, exp); err != nil {
		return annals.AppendResult{}, err
	}
	pos := o.writeMetadata(name, md, o.now(clock))
	return annals.AppendResult{NextExpected: o.stream(meta).actual(), FirstPosition: pos, LastPosition: pos}, nil
}

func (o *oracle) StreamMetadata(name string) (annals.StreamMetadata, annals.ExpectedRevision, error) {
	ms := o.stream(annals.MetastreamOf(name))
	if !ms.written() {
		return annals.StreamMetadata{}, annals.NoStream, nil
	}
	return o.metadata(name), ms.actual(), nil
}

// ReadStream reads at time now: the events the metadata leaves visible,
// then the direction, the start and the limit.
func (o *oracle) ReadStream(name string, opts annals.ReadStreamOptions, now time.Time) iter.Seq2[annals.Event, error] {
	s := o.stream(name)
	if s.tombstoned {
		return oneError(annals.StreamDeleted(name))
	}
	if !s.shows() {
		return oneError(annals.StreamNotFound(name))
	}
	md := o.metadata(name)
	count := uint64(len(s.positions))
	var out []annals.Event
	for r, p := range s.positions {
		rev, e := annals.Revision(r), o.log[p-1]
		hidden := rev < md.TruncateBefore ||
			(md.MaxCount > 0 && count-uint64(rev) > md.MaxCount) ||
			(md.MaxAge > 0 && e.Recorded.Before(now.Add(-md.MaxAge))) ||
			(opts.Direction == annals.Forwards && rev < opts.From) ||
			(opts.Direction == annals.Backwards && rev > opts.From)
		if !hidden {
			out = append(out, e)
		}
	}
	if opts.Direction == annals.Backwards {
		slices.Reverse(out)
	}
	return events(out, opts.Limit)
}

func (o *oracle) ReadAll(opts annals.ReadAllOptions) iter.Seq2[annals.Event, error] {
	var out []annals.Event
	for _, e := range o.log {
		after := e.Position >= opts.From
		if opts.Direction == annals.Backwards {
			after = e.Position <= opts.From
		}
		if after && opts.Filter.Match(&e) {
			out = append(out, e)
		}
	}
	if opts.Direction == annals.Backwards {
		slices.Reverse(out)
	}
	return events(out, opts.Limit)
}

// events yields the first limit of out (all of them if limit is 0).
func events(out []annals.Event, limit uint64) iter.Seq2[annals.Event, error] {
	if limit > 0 && uint64(len(out)) > limit {
		out = out[:limit]
	}
	return func(yield func(annals.Event, error) bool) {
		for _, e := range out {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func oneError(err error) iter.Seq2[annals.Event, error] {
	return func(yield func(annals.Event, error) bool) { yield(annals.Event{}, err) }
}
