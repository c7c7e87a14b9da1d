package server

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/dcbpb"
	"github.com/google/uuid"
	v2errors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// The states of KurrentDB's protocol v2 expected revisions and checks
// (ExpectedRevisionConstants, and the core's ExpectedVersion for the
// states only checks take).
const (
	v2NoStream   = -1
	v2Any        = -2
	v2Exists     = -4
	v2Deleted    = -5
	v2Tombstoned = -6
)

// schemaNamePattern is the schema name (event type) KurrentDB's v2
// validator takes: letters, digits, "_", ".", "$", ":" and "-".
var schemaNamePattern = regexp.MustCompile(`^[\p{L}\p{N}_.$:-]+$`)

// schemaFormatNames are the formats' names as KurrentDB writes them into
// "$schema.format".
var schemaFormatNames = map[v2.SchemaFormat]string{
	v2.SchemaFormat_SCHEMA_FORMAT_JSON:     "Json",
	v2.SchemaFormat_SCHEMA_FORMAT_PROTOBUF: "Protobuf",
	v2.SchemaFormat_SCHEMA_FORMAT_AVRO:     "Avro",
	v2.SchemaFormat_SCHEMA_FORMAT_BYTES:    "Bytes",
}

// recordToEvent maps a v2 record as KurrentDB does: the schema name is
// the event type, the JSON format sets the JSON content type, and the
// properties become the metadata, a JSON object with "$schema.format",
// "$schema.name" and "$schema.id" (if given) added — what a KurrentDB
// v1 read of such a record gives. KurrentDB keeps the properties as a
// protobuf Struct and renders that JSON at each read; Annals writes it
// once, so every reader sees the same bytes.
func recordToEvent(r *v2.AppendRecord) (annals.EventData, error) {
	var e annals.EventData
	if r.RecordId != nil {
		id, err := uuid.Parse(r.GetRecordId())
		if err != nil || id == (uuid.UUID{}) {
			return e, v2BadRequest("AppendRequest", "Record ID must be a valid and non-empty UUID.")
		}
		e.ID = id
	}
	schema := r.GetSchema()
	format, known := schemaFormatNames[schema.GetFormat()]
	switch {
	case schema.GetFormat() == v2.SchemaFormat_SCHEMA_FORMAT_UNSPECIFIED:
		return e, v2BadRequest("AppendRequest", "Schema format must not be Unspecified.")
	case !known:
		return e, v2BadRequest("AppendRequest", "Schema format must be one of Json, Protobuf or Bytes.")
	case schema.GetName() == "":
		return e, v2BadRequest("AppendRequest", "Schema name must not be empty")
	case !schemaNamePattern.MatchString(schema.GetName()):
		return e, v2BadRequest("AppendRequest", "Schema name may hold only letters, digits, '_', '.', '$', ':' and '-'.")
	}
	props := make(map[string]any, len(r.GetProperties())+3)
	for k, v := range r.GetProperties() {
		if k == "" {
			return e, v2BadRequest("AppendRequest", "Property keys must not be empty.")
		}
		props[k] = v.AsInterface()
	}
	if schema.Id != nil {
		id, err := uuid.Parse(schema.GetId())
		if err != nil || id == (uuid.UUID{}) {
			return e, v2BadRequest("AppendRequest", "Schema ID must be a valid and non-empty UUID")
		}
		props["$schema.id"] = schema.GetId()
	}
	props["$schema.format"] = format
	props["$schema.name"] = schema.GetName()
	md, err := json.Marshal(props)
	if err != nil {
		return e, v2BadRequest("AppendRequest", "Property values must be JSON values: "+err.Error())
	}
	e.Type, e.Data, e.Metadata = schema.GetName(), r.GetData(), md
	e.ContentType = annals.ContentTypeBinary
	if schema.GetFormat() == v2.SchemaFormat_SCHEMA_FORMAT_JSON {
		e.ContentType = annals.ContentTypeJSON
	}
	return e, nil
}

// expectedFromV2 maps an AppendRequest's expected revision (absent: any).
func expectedFromV2(raw *int64) (annals.ExpectedRevision, error) {
	if raw == nil {
		return annals.Any, nil
	}
	switch v := *raw; {
	case v >= 0:
		return annals.Exact(annals.Revision(v)), nil
	case v == v2NoStream:
		return annals.NoStream, nil
	case v == v2Any:
		return annals.Any, nil
	case v == v2Exists:
		return annals.StreamExists, nil
	}
	return annals.Any, v2BadRequest("AppendRequest", "Expected revision must be positive or one of the allowed constants: NoStream (-1), Any (-2) or Exists (-4).")
}

// checkFromV2 maps a check's expected state; Any is not a check.
func checkFromV2(v int64) (annals.ExpectedRevision, error) {
	e, err := dcbpb.FromRawState(v)
	if err != nil {
		return annals.Any, v2BadRequest("AppendRecordsRequest", "Expected state must be positive or one of the allowed constants: NoStream (-1), Exists (-4), Deleted (-5), or Tombstoned (-6). Any (-2) is not allowed.")
	}
	return e, nil
}

// rawExpected is an expectation as the protocol writes it.
func rawExpected(e annals.ExpectedRevision) int64 { return dcbpb.RawState(e) }

// rawActual is a violated stream's state as KurrentDB reports it: -6 for
// a tombstoned stream, -5 for a soft-deleted one that was expected to
// exist, else its last revision (kept by a soft delete) or -1.
func rawActual(v annals.Violation) int64 {
	switch {
	case v.Tombstoned:
		return v2Tombstoned
	case v.Deleted && v.Expected.IsStreamExists():
		return v2Deleted
	}
	if r, ok := v.Actual.Revision(); ok {
		return int64(r)
	}
	return v2NoStream
}

// v2Error is a status as KurrentDB's v2 services send one: the code, the
// message, and in its details an ErrorInfo naming the error, then the
// error's own details (the Node client reads only the last detail).
func v2Error(code codes.Code, reason, domain, msg string, detail protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: domain}}
	if detail != nil {
		details = append(details, detail)
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st.Err()
}

// v2BadRequest is KurrentDB's answer to a request its validators refuse.
func v2BadRequest(request, reason string) error {
	st := status.New(codes.InvalidArgument, fmt.Sprintf("The '%s' is invalid: %s", request, reason))
	if withDetails, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: "BAD_REQUEST", Domain: "server"},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Description: reason}}},
	); err == nil {
		st = withDetails
	}
	return st.Err()
}

// consistencyViolation is AppendRecords' answer to failed checks.
func consistencyViolation(ce *annals.ConsistencyError) error {
	d := &v2errors.AppendConsistencyViolationErrorDetails{}
	var msg strings.Builder
	msg.WriteString("Append failed due to consistency violations.\n")
	for _, v := range ce.Violations {
		d.Violations = append(d.Violations, &v2errors.ConsistencyViolation{
			CheckIndex: int32(v.Check),
			Type: &v2errors.ConsistencyViolation_StreamState{StreamState: &v2errors.ConsistencyViolation_StreamStateViolation{
				Stream: v.Stream, ExpectedState: rawExpected(v.Expected), ActualState: rawActual(v),
			}},
		})
		fmt.Fprintf(&msg, "\n - Stream '%s' expected %s, actual %s.", v.Stream, v.Expected, actualText(v))
	}
	return v2Error(codes.FailedPrecondition, "APPEND_CONSISTENCY_VIOLATION", "streams", msg.String(), d)
}

func actualText(v annals.Violation) string {
	switch {
	case v.Tombstoned:
		return "tombstoned"
	case v.Deleted:
		return "deleted"
	}
	return v.Actual.String()
}

// sessionConflict is AppendSession's answer to failed expectations: as
// KurrentDB, "tombstoned" naming the first failure that is a tombstoned
// stream or a soft-deleted one expected to exist, else a revision
// conflict about the first failure.
func sessionConflict(ce *annals.ConsistencyError) error {
	first := ce.Violations[0]
	for _, v := range ce.Violations {
		if v.Tombstoned || (v.Deleted && v.Expected.IsStreamExists()) {
			return v2Error(codes.FailedPrecondition, "STREAM_TOMBSTONED", "streams",
				fmt.Sprintf("Stream '%s' has been tombstoned. It has been permanently removed from the system and cannot be restored.", v.Stream),
				&v2errors.StreamTombstonedErrorDetails{Stream: v.Stream})
		}
	}
	actual := int64(v2NoStream)
	if r, ok := first.Actual.Revision(); ok {
		actual = int64(r)
	}
	return v2Error(codes.FailedPrecondition, "STREAM_REVISION_CONFLICT", "streams",
		fmt.Sprintf("Append failed due to a revision conflict on stream '%s'. Expected revision: %d. Actual revision: %d.", first.Stream, rawExpected(first.Expected), actual),
		&v2errors.StreamRevisionConflictErrorDetails{Stream: first.Stream, ExpectedRevision: rawExpected(first.Expected), ActualRevision: actual})
}

// recordTooLarge and transactionTooLarge are the size errors, with the
// store's limits.
func recordTooLarge(stream string, e *annals.EventData, size, max int) error {
	return v2Error(codes.InvalidArgument, "APPEND_RECORD_SIZE_EXCEEDED", "streams",
		fmt.Sprintf("The size of record %s (%d bytes) exceeds the maximum allowed size of %d bytes by %d", e.ID, size, max, size-max),
		&v2errors.AppendRecordSizeExceededErrorDetails{Stream: stream, RecordId: e.ID.String(), Size: int32(size), MaxSize: int32(max)})
}

func transactionTooLarge(size, max, records int) error {
	return v2Error(codes.Aborted, "APPEND_TRANSACTION_SIZE_EXCEEDED", "streams",
		fmt.Sprintf("Transaction size (%d) exceeded the maximum allowed size of %d by %d, after %d record(s).", size, max, size-max, records),
		&v2errors.AppendTransactionSizeExceededErrorDetails{Size: int32(size), MaxSize: int32(max)})
}
