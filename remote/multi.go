package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/dcbpb"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/status"
)

// AppendMulti implements annals.Store with the KurrentDB protocol's
// AppendRecords (v2, KurrentDB 26.1 and annals serve). The protocol
// carries metadata as properties: an event's metadata must be empty or a
// JSON object (of strings only through a cluster's URL, where the
// official client sends it), and reads give it back with KurrentDB's
// "$schema.name" and "$schema.format" properties added.
func (s *Store) AppendMulti(ctx context.Context, m annals.MultiAppend) (annals.MultiAppendResult, error) {
	records := make([]kurrentdb.AppendRecord, len(m.Records))
	for i, r := range m.Records {
		records[i] = kurrentdb.AppendRecord{Stream: r.Stream, Record: eventData(r.Event)}
	}
	checks := make([]kurrentdb.ConsistencyCheck, len(m.Checks))
	for i, c := range m.Checks {
		checks[i] = kurrentdb.StreamStateCheck{Stream: c.Stream, ExpectedState: checkState(c.Expected)}
	}
	if err := ctx.Err(); err != nil {
		return annals.MultiAppendResult{}, err // not sent: certainly not written
	}
	if len(records) == 0 {
		// The client refuses it before sending; say it as a store does.
		return annals.MultiAppendResult{}, nameLimits.CheckRecords(nil)
	}
	if needsDCB(m) {
		return s.appendDCB(ctx, m)
	}
	if s.v2 != nil {
		r, err := s.v2.appendRecords(ctx, m)
		if err != nil {
			return annals.MultiAppendResult{}, s.v2Error(ctx, m, err)
		}
		resp := &kurrentdb.AppendRecordsResponse{Position: r.GetPosition()}
		for _, rev := range r.GetRevisions() {
			resp.Responses = append(resp.Responses, kurrentdb.AppendResponse{Stream: rev.GetStream(), StreamRevision: rev.GetRevision()})
		}
		return multiResult(m.Records, resp), nil
	}
	for i, r := range m.Records {
		if err := checkProperties(r.Event.Metadata); err != nil {
			return annals.MultiAppendResult{}, &annals.InvalidInputError{Field: fmt.Sprintf("record[%d].metadata", i), Reason: err.Error()}
		}
	}
	r, err := s.client.AppendRecords(ctx, records, checks...)
	if err != nil {
		return annals.MultiAppendResult{}, s.multiError(ctx, m, err)
	}
	return multiResult(m.Records, r), nil
}

// v2Error maps an error of the direct v2 call.
func (s *Store) v2Error(ctx context.Context, m annals.MultiAppend, err error) error {
	var invalid *annals.InvalidInputError
	if errors.As(err, &invalid) {
		return err
	}
	if ctx.Err() == nil {
		if ce, tombstoned, ok := v2Violations(err, m); ok {
			if ce != nil {
				return ce
			}
			return annals.StreamDeleted(tombstoned)
		}
	}
	c := call{ctx: ctx, write: true}
	mapped := s.mapError(c, err)
	if st, ok := status.FromError(err); ok && ctx.Err() == nil {
		mapped = s.fromStatus(c, st)
	}
	if mayHaveWritten(err, mapped) {
		return annals.OutcomeUnknown(mapped)
	}
	return mapped
}

// checkProperties says why metadata cannot travel as v2 properties.
func checkProperties(md []byte) error {
	if len(md) == 0 {
		return nil
	}
	var props map[string]string
	if err := json.Unmarshal(md, &props); err != nil {
		return errors.New("the KurrentDB protocol's multi-stream append carries metadata only as a JSON object of strings")
	}
	return nil
}

// eventData is an event as the official client sends it, with the id
// generated here if the caller gave none, as the local stores generate
// them (core's newEvent): the v1 protocol always carries an id, so the
// server cannot. (The DCB service takes records without one: the store
// generates them.)
func eventData(e annals.EventData) kurrentdb.EventData {
	id := e.ID
	if id == (uuid.UUID{}) {
		id = uuid.Must(uuid.NewV7())
	}
	ct := kurrentdb.ContentTypeJson
	if e.ContentType != "" && e.ContentType != annals.ContentTypeJSON {
		ct = kurrentdb.ContentTypeBinary
	}
	return kurrentdb.EventData{EventID: id, EventType: e.Type, ContentType: ct, Data: e.Data, Metadata: e.Metadata}
}

// checkState is the state a check sends. The client has no type for
// deleted and tombstoned: the raw value travels as a revision.
func checkState(e annals.ExpectedRevision) kurrentdb.StreamState {
	if e.IsDeleted() || e.IsTombstoned() {
		return kurrentdb.StreamRevision{Value: uint64(dcbpb.RawState(e))}
	}
	return streamState(e)
}

// multiResult orders the server's revisions (in no guaranteed order) by
// each stream's first record, and places each stream's last record: the
// records are consecutive positions of $all ending at the given one.
func multiResult(records []annals.Record, r *kurrentdb.AppendRecordsResponse) annals.MultiAppendResult {
	last := annals.Position(r.Position)
	first := last - annals.Position(len(records)) + 1
	revisions := make(map[string]uint64, len(r.Responses))
	for _, s := range r.Responses {
		revisions[s.Stream] = uint64(s.StreamRevision)
	}
	out := annals.MultiAppendResult{FirstPosition: first, LastPosition: last}
	index := map[string]int{}
	for i, rec := range records {
		j, ok := index[rec.Stream]
		if !ok {
			j = len(out.Streams)
			index[rec.Stream] = j
			out.Streams = append(out.Streams, annals.StreamResult{Stream: rec.Stream,
				NextExpected: annals.Exact(annals.Revision(revisions[rec.Stream]))})
		}
		out.Streams[j].LastPosition = first + annals.Position(i)
	}
	return out
}

// multiError maps AppendRecords' errors: the violations of its checks
// onto a *annals.ConsistencyError, the rest as fromError does.
func (s *Store) multiError(ctx context.Context, m annals.MultiAppend, err error) error {
	var cv *kurrentdb.AppendConsistencyViolationError
	if errors.As(err, &cv) && ctx.Err() == nil {
		written := map[string]bool{}
		for _, r := range m.Records {
			written[r.Stream] = true
		}
		ce := &annals.ConsistencyError{}
		for _, v := range cv.Violations {
			ce.Violations = append(ce.Violations, violation(v, m.Checks, written))
		}
		return ce
	}
	var ts *kurrentdb.StreamTombstoneError
	if errors.As(err, &ts) {
		return annals.StreamDeleted(ts.Stream)
	}
	return s.fromError(call{ctx: ctx, write: true}, err)
}

// violation rebuilds one violation. The expected state is the caller's
// own check (a written stream without one expected any).
func violation(v kurrentdb.ConsistencyViolation, checks []annals.StreamCheck, written map[string]bool) annals.Violation {
	out := annals.Violation{Check: int(v.CheckIndex), Stream: v.Stream, Expected: annals.Any,
		Actual: annals.NoStream, Written: written[v.Stream]}
	if i := int(v.CheckIndex); i >= 0 && i < len(checks) {
		out.Expected = checks[i].Expected
	}
	if r, ok := v.ActualState.(kurrentdb.StreamRevision); ok {
		switch raw := int64(r.Value); {
		case raw == dcbpb.StateDeleted:
			out.Deleted = true
		case raw == dcbpb.StateTombstoned:
			out.Tombstoned = true
		case r.Value <= math.MaxInt64:
			out.Actual = annals.Exact(annals.Revision(r.Value))
		}
	}
	return out
}
