// Package dcbpb is Annals' DCB service over gRPC (dcb.proto): the
// generated messages and service, and their conversions to and from the
// annals types, shared by package server and package remote.
package dcbpb

import (
	"fmt"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// The states a StreamCheck takes besides revisions (KurrentDB's values).
const (
	StateNoStream   = -1
	StateExists     = -4
	StateDeleted    = -5
	StateTombstoned = -6
)

// ToQuery and FromQuery convert queries.
func ToQuery(q annals.Query) *Query {
	out := &Query{}
	for _, it := range q.Items {
		out.Items = append(out.Items, &QueryItem{Types: it.Types, Tags: it.Tags})
	}
	return out
}

func FromQuery(q *Query) annals.Query {
	var out annals.Query
	for _, it := range q.GetItems() {
		out.Items = append(out.Items, annals.QueryItem{Types: it.GetTypes(), Tags: it.GetTags()})
	}
	return out
}

// ToEvent and FromEvent convert recorded events.
func ToEvent(e *annals.Event) *Event {
	return &Event{Id: e.ID[:], Stream: e.Stream, Revision: uint64(e.Revision), Position: uint64(e.Position),
		Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata, Tags: e.Tags,
		RecordedUnixNanos: e.Recorded.UnixNano()}
}

func FromEvent(e *Event) (annals.Event, error) {
	id, err := uuid.FromBytes(e.GetId())
	if err != nil {
		return annals.Event{}, fmt.Errorf("dcb: event id: %w", err)
	}
	return annals.Event{ID: id, Stream: e.GetStream(), Revision: annals.Revision(e.GetRevision()),
		Position: annals.Position(e.GetPosition()), Type: e.GetType(), ContentType: e.GetContentType(),
		Data: e.GetData(), Metadata: e.GetMetadata(), Tags: e.GetTags(),
		Recorded: time.Unix(0, e.GetRecordedUnixNanos()).UTC()}, nil
}

// ToAppend and FromAppend convert a multi-stream append.
func ToAppend(m annals.MultiAppend) *AppendRequest {
	out := &AppendRequest{}
	for _, r := range m.Records {
		var id []byte
		if r.Event.ID != (uuid.UUID{}) {
			id = r.Event.ID[:]
		}
		out.Records = append(out.Records, &Record{Stream: r.Stream, Id: id, Type: r.Event.Type,
			ContentType: r.Event.ContentType, Data: r.Event.Data, Metadata: r.Event.Metadata, Tags: r.Event.Tags})
	}
	for _, c := range m.Checks {
		out.Checks = append(out.Checks, &StreamCheck{Stream: c.Stream, Expected: RawState(c.Expected)})
	}
	if c := m.Condition; c != nil {
		out.Condition = &Condition{Query: ToQuery(c.Query), After: uint64(c.After)}
	}
	return out
}

func FromAppend(req *AppendRequest) (annals.MultiAppend, error) {
	var m annals.MultiAppend
	for i, r := range req.GetRecords() {
		e := annals.EventData{Type: r.GetType(), ContentType: r.GetContentType(), Data: r.GetData(),
			Metadata: r.GetMetadata(), Tags: r.GetTags()}
		if len(r.GetId()) > 0 {
			id, err := uuid.FromBytes(r.GetId())
			if err != nil {
				return m, &annals.InvalidInputError{Field: fmt.Sprintf("record[%d].id", i), Reason: "an id is a UUID of 16 bytes"}
			}
			e.ID = id
		}
		m.Records = append(m.Records, annals.Record{Stream: r.GetStream(), Event: e})
	}
	for i, c := range req.GetChecks() {
		expected, err := FromRawState(c.GetExpected())
		if err != nil {
			return m, &annals.InvalidInputError{Field: fmt.Sprintf("check[%d].expected", i), Reason: err.Error()}
		}
		m.Checks = append(m.Checks, annals.StreamCheck{Stream: c.GetStream(), Expected: expected})
	}
	if c := req.GetCondition(); c != nil {
		m.Condition = &annals.Condition{Query: FromQuery(c.GetQuery()), After: annals.Position(c.GetAfter())}
	}
	return m, nil
}

// RawState is a check's expectation as the protocol writes it.
func RawState(e annals.ExpectedRevision) int64 {
	if r, ok := e.Revision(); ok {
		return int64(r)
	}
	switch {
	case e.IsNoStream():
		return StateNoStream
	case e.IsStreamExists():
		return StateExists
	case e.IsDeleted():
		return StateDeleted
	case e.IsTombstoned():
		return StateTombstoned
	}
	return -2 // any: refused by the store
}

// FromRawState reads a check's expectation.
func FromRawState(v int64) (annals.ExpectedRevision, error) {
	switch {
	case v >= 0:
		return annals.Exact(annals.Revision(v)), nil
	case v == StateNoStream:
		return annals.NoStream, nil
	case v == StateExists:
		return annals.StreamExists, nil
	case v == StateDeleted:
		return annals.Deleted, nil
	case v == StateTombstoned:
		return annals.Tombstoned, nil
	}
	return annals.Any, fmt.Errorf("%d is no state: a revision, or -1 no stream, -4 exists, -5 deleted, -6 tombstoned", v)
}

// ToResult and FromResult convert a multi-stream append's result.
func ToResult(r annals.MultiAppendResult) *AppendResponse {
	out := &AppendResponse{FirstPosition: uint64(r.FirstPosition), LastPosition: uint64(r.LastPosition)}
	for _, s := range r.Streams {
		rev, _ := s.NextExpected.Revision()
		out.Streams = append(out.Streams, &StreamResult{Stream: s.Stream, Revision: uint64(rev), LastPosition: uint64(s.LastPosition)})
	}
	return out
}

func FromResult(r *AppendResponse) annals.MultiAppendResult {
	out := annals.MultiAppendResult{FirstPosition: annals.Position(r.GetFirstPosition()), LastPosition: annals.Position(r.GetLastPosition())}
	for _, s := range r.GetStreams() {
		out.Streams = append(out.Streams, annals.StreamResult{Stream: s.GetStream(),
			NextExpected: annals.Exact(annals.Revision(s.GetRevision())), LastPosition: annals.Position(s.GetLastPosition())})
	}
	return out
}
