package core

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// OpKind names a write.
type OpKind uint8

const (
	OpAppend OpKind = iota + 1
	OpDelete
	OpTombstone
	OpSetMetadata // an append to $$stream made through SetStreamMetadata
	OpMulti       // a multi-stream append: Multi, not Stream, Expected, Events
)

// Op is one write request, validated by Validate before it reaches a
// writer.
type Op struct {
	Kind     OpKind
	Stream   string
	Expected annals.ExpectedRevision
	Events   []annals.EventData
	Multi    *annals.MultiAppend
	// Streams is an OpMulti's answer beside the writer's AppendResult:
	// where it left each stream written. PlanOp sets it; the caller reads
	// it once its request is answered (which orders the two).
	Streams []annals.StreamResult
}

// Validate checks an op against the limits. It runs in the caller's
// goroutine, before the op reaches a writer.
func Validate(l annals.Limits, op *Op) error {
	if op.Kind == OpMulti {
		if err := l.CheckRecords(op.Multi.Records); err != nil {
			return err
		}
		if c := op.Multi.Condition; c != nil {
			if err := c.Query.Validate(); err != nil {
				return err
			}
		}
		return l.CheckChecks(op.Multi.Checks)
	}
	if op.Expected.IsDeleted() || op.Expected.IsTombstoned() {
		return &annals.InvalidInputError{Field: "expected", Reason: op.Expected.String() + " is a state only a multi-stream append's check can ask for"}
	}
	if of, meta := annals.IsMetastream(op.Stream); meta {
		if op.Kind == OpSetMetadata || l.AllowSystemStreams {
			if err := l.CheckNewStreamName(of); err != nil {
				return err
			}
			if op.Kind == OpDelete || op.Kind == OpTombstone {
				return &annals.InvalidInputError{Field: "stream", Reason: "a metastream cannot be deleted; delete its stream"}
			}
			// The size, count and id rules hold here too; only the type
			// is a system one ($metadata).
			system := l
			system.AllowSystemStreams = true
			if err := system.CheckEvents(op.Events); err != nil {
				return err
			}
			return checkMetadataEvents(op.Events)
		}
	}
	if err := l.CheckWritableStream(op.Stream); err != nil {
		return err
	}
	return l.CheckEvents(op.Events)
}

func checkMetadataEvents(events []annals.EventData) error {
	for i := range events {
		if events[i].Type != annals.EventTypeMetadata {
			return &annals.InvalidInputError{Field: fmt.Sprintf("event[%d].type", i),
				Reason: "events of a metastream must have type " + annals.EventTypeMetadata}
		}
		md, err := annals.ParseStreamMetadata(events[i].Data)
		if err != nil {
			return &annals.InvalidInputError{Field: fmt.Sprintf("event[%d].data", i), Reason: err.Error()}
		}
		if err := md.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// View is the state a planner reads: the store's committed state plus, in a
// group commit, the writes planned earlier in the same group.
type View interface {
	State(stream string) (StreamState, error)
	// Metadata returns the latest metadata of stream (zero if none).
	Metadata(stream string) (annals.StreamMetadata, error)
	// Lookup says where an event id is recorded in stream. Ids are
	// scoped to their stream, as in KurrentDB: an id recorded in another
	// stream is not found.
	Lookup(stream string, id uuid.UUID) (Recorded, error)
	// FirstMatch returns the position of the first event after after
	// that q matches, the writes planned earlier in the group included,
	// or 0 if there is none.
	FirstMatch(q annals.Query, after annals.Position) (annals.Position, error)
}

// StreamUpdate is a stream's state after a planned write.
type StreamUpdate struct {
	Stream string
	State  StreamState
}

// Plan is what one op writes: events in global order (positions already
// assigned, gapless from the next position given to PlanOp), and the new
// state of each stream touched. The backend writes all of it atomically.
type Plan struct {
	Err       error // rejected: write nothing
	Duplicate bool  // an idempotent retry: write nothing, answer Result
	Events    []annals.Event
	Updates   []StreamUpdate
	Result    annals.AppendResult
	// Streams is where a multi-stream append leaves each stream written.
	Streams []annals.StreamResult
}

// PlanOp decides op against v. next is the global position the first new
// event gets; now is the recorded time of the new events.
func PlanOp(v View, op *Op, next annals.Position, now time.Time) Plan {
	p, err := planOp(v, op, next, now)
	if err != nil {
		return Plan{Err: err}
	}
	op.Streams = p.Streams
	return p
}

func planOp(v View, op *Op, next annals.Position, now time.Time) (Plan, error) {
	if op.Kind == OpMulti {
		return planMulti(v, op.Multi, next, now)
	}
	st, err := v.State(op.Stream)
	if err != nil {
		return Plan{}, err
	}
	switch op.Kind {
	case OpDelete:
		return planDelete(v, op, st, next, now)
	case OpTombstone:
		return planTombstone(op, st, next, now)
	}
	// Only caller ids can be recorded already: generated ones are fresh.
	// Without any, nothing is looked up (and nothing allocated).
	var ids []uuid.UUID
	var found []Recorded
	for i := range op.Events {
		id := op.Events[i].ID
		if id == (uuid.UUID{}) {
			continue
		}
		if ids == nil {
			ids = make([]uuid.UUID, len(op.Events))
			found = make([]Recorded, len(op.Events))
		}
		ids[i] = id
		if found[i], err = v.Lookup(op.Stream, id); err != nil {
			return Plan{}, err
		}
	}
	d := Decide(op.Stream, op.Expected, st, ids, found)
	if d.Err != nil {
		return Plan{}, d.Err
	}
	if d.Duplicate {
		return Plan{Duplicate: true, Result: d.Result}, nil
	}
	var p Plan
	if len(op.Events) == 0 {
		p.Result.NextExpected = st.Actual()
		return p, nil
	}
	if st.SoftDeleted {
		// Writing a soft-deleted stream brings it back with only the new
		// events visible, as KurrentDB does: truncate before them.
		md, err := v.Metadata(op.Stream)
		if err != nil {
			return Plan{}, err
		}
		md.TruncateBefore = st.NextRevision()
		if err := planMetadata(v, &p, op.Stream, md, &next, now); err != nil {
			return Plan{}, err
		}
	}
	first := st.NextRevision()
	for i := range op.Events {
		ed := &op.Events[i]
		p.Events = append(p.Events, newEvent(op.Stream, ed, first+annals.Revision(i), next, now))
		next++
	}
	last := p.Events[len(p.Events)-1]
	p.Updates = append(p.Updates, StreamUpdate{Stream: op.Stream, State: StreamState{
		Exists: true, LastRevision: last.Revision, LastPosition: last.Position,
	}})
	p.Result = annals.AppendResult{
		NextExpected:  annals.Exact(last.Revision),
		FirstPosition: last.Position - annals.Position(len(op.Events)) + 1,
		LastPosition:  last.Position,
	}
	return p, nil
}

func newEvent(stream string, ed *annals.EventData, revision annals.Revision, position annals.Position, now time.Time) annals.Event {
	id := ed.ID
	if id == (uuid.UUID{}) {
		// Version 7: time-ordered, so a store's id index grows at its end.
		id = uuid.Must(uuid.NewV7())
	}
	ct := ed.ContentType
	if ct == "" {
		ct = annals.ContentTypeJSON
	}
	return annals.Event{
		ID: id, Stream: stream, Type: ed.Type, ContentType: ct,
		Data: ed.Data, Metadata: ed.Metadata, Tags: ed.Tags,
		Recorded: now, Revision: revision, Position: position,
	}
}

// planMetadata adds a $metadata event for stream to p.
func planMetadata(v View, p *Plan, stream string, md annals.StreamMetadata, next *annals.Position, now time.Time) error {
	meta := annals.MetastreamOf(stream)
	ms, err := v.State(meta)
	if err != nil {
		return err
	}
	data, err := json.Marshal(md)
	if err != nil {
		return err
	}
	e := newEvent(meta, &annals.EventData{Type: annals.EventTypeMetadata, Data: data}, ms.NextRevision(), *next, now)
	*next++
	p.Events = append(p.Events, e)
	p.Updates = append(p.Updates, StreamUpdate{Stream: meta, State: StreamState{
		Exists: true, LastRevision: e.Revision, LastPosition: e.Position,
	}})
	return nil
}

func planDelete(v View, op *Op, st StreamState, next annals.Position, now time.Time) (Plan, error) {
	if err := CheckExpected(op.Stream, op.Expected, st); err != nil {
		return Plan{}, err
	}
	var p Plan
	if !st.Exists {
		// A stream that never existed (no events, no metadata) cannot be
		// deleted, whatever the expectation: KurrentDB answers wrong
		// expected version there, and clients rely on it.
		ms, err := v.State(annals.MetastreamOf(op.Stream))
		if err != nil {
			return Plan{}, err
		}
		if !ms.Exists {
			return Plan{}, &annals.WrongExpectedRevisionError{Stream: op.Stream, Expected: op.Expected, Actual: annals.NoStream}
		}
	}
	if !st.Live() {
		return p, nil // nothing to hide: deleting is a no-op
	}
	md, err := v.Metadata(op.Stream)
	if err != nil {
		return Plan{}, err
	}
	md.TruncateBefore = annals.TruncateBeforeDeleted
	if err := planMetadata(v, &p, op.Stream, md, &next, now); err != nil {
		return Plan{}, err
	}
	del := st
	del.SoftDeleted = true
	del.LastPosition = p.Events[0].Position
	p.Updates = append(p.Updates, StreamUpdate{Stream: op.Stream, State: del})
	p.Result.LastPosition = del.LastPosition
	return p, nil
}

func planTombstone(op *Op, st StreamState, next annals.Position, now time.Time) (Plan, error) {
	if err := CheckExpected(op.Stream, op.Expected, st); err != nil {
		return Plan{}, err
	}
	e := newEvent(op.Stream, &annals.EventData{Type: annals.EventTypeStreamDeleted, ContentType: annals.ContentTypeBinary},
		annals.RevisionTombstone, next, now)
	ts := st
	ts.Tombstoned = true
	ts.LastPosition = e.Position
	return Plan{
		Events:  []annals.Event{e},
		Updates: []StreamUpdate{{Stream: op.Stream, State: ts}},
		Result:  annals.AppendResult{LastPosition: e.Position},
	}, nil
}

// MetadataOp builds the op SetStreamMetadata sends.
func MetadataOp(stream string, expected annals.ExpectedRevision, md annals.StreamMetadata) (*Op, error) {
	if err := md.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(md)
	if err != nil {
		return nil, &annals.InvalidInputError{Field: "metadata", Reason: err.Error()}
	}
	return &Op{Kind: OpSetMetadata, Stream: annals.MetastreamOf(stream), Expected: expected,
		Events: []annals.EventData{{Type: annals.EventTypeMetadata, Data: data}}}, nil
}

// Writes gives a store the write methods of annals.Store on top of one
// function that runs an op. Each store keeps one in an unexported field and
// declares the methods on itself, documented, delegating here: embedded,
// they would show in no store's documentation.
type Writes struct {
	Write func(ctx context.Context, op *Op) (annals.AppendResult, error)
}

// Append implements annals.Store.
func (w Writes) Append(ctx context.Context, stream string, expected annals.ExpectedRevision, events ...annals.EventData) (annals.AppendResult, error) {
	return w.Write(ctx, &Op{Kind: OpAppend, Stream: stream, Expected: expected, Events: events})
}

// SetStreamMetadata implements annals.Store.
func (w Writes) SetStreamMetadata(ctx context.Context, stream string, expected annals.ExpectedRevision, md annals.StreamMetadata) (annals.AppendResult, error) {
	op, err := MetadataOp(stream, expected, md)
	if err != nil {
		return annals.AppendResult{}, err
	}
	return w.Write(ctx, op)
}

// Delete implements annals.Store.
func (w Writes) Delete(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	r, err := w.Write(ctx, &Op{Kind: OpDelete, Stream: stream, Expected: expected})
	return annals.DeleteResult{Position: r.LastPosition}, err
}

// AppendMulti implements annals.Store.
func (w Writes) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	op := &Op{Kind: OpMulti, Multi: &m}
	r, err := w.Write(ctx, op)
	if err != nil {
		return annals.MultiAppendResult{}, err
	}
	return annals.MultiAppendResult{Streams: op.Streams, FirstPosition: r.FirstPosition, LastPosition: r.LastPosition}, nil
}

// Tombstone implements annals.Store.
func (w Writes) Tombstone(ctx context.Context, stream string, expected annals.ExpectedRevision) (annals.DeleteResult, error) {
	r, err := w.Write(ctx, &Op{Kind: OpTombstone, Stream: stream, Expected: expected})
	return annals.DeleteResult{Position: r.LastPosition}, err
}
