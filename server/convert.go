package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
)

// KurrentDB's system metadata keys on the wire.
const (
	metaType        = "type"
	metaContentType = "content-type"
	metaCreated     = "created"
)

// uuidFromProto reads an id sent structured (two signed halves, as the
// Go and Java clients do) or as a string.
func uuidFromProto(id *shared.UUID) (uuid.UUID, error) {
	if id == nil {
		return uuid.UUID{}, nil
	}
	if s := id.GetStructured(); s != nil {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], uint64(s.MostSignificantBits))
		binary.BigEndian.PutUint64(u[8:], uint64(s.LeastSignificantBits))
		return u, nil
	}
	if str := id.GetString_(); str != "" {
		return uuid.Parse(str)
	}
	return uuid.UUID{}, nil
}

func uuidToProto(u uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: u.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(u[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(u[8:])),
	}}}
}

// ticksSinceEpoch is KurrentDB's "created": .NET ticks (100 ns) since the
// Unix epoch. The Go client dies (log.Fatalf) on an event without it.
func ticksSinceEpoch(t time.Time) string {
	return strconv.FormatInt(t.UnixNano()/100, 10)
}

// recordedToProto puts an event on the wire. Its position is sent as both
// commit and prepare position: Annals has one global order.
func recordedToProto(e *annals.Event, uuidAsString bool) *streams.ReadResp_ReadEvent {
	return &streams.ReadResp_ReadEvent{
		Event: &streams.ReadResp_ReadEvent_RecordedEvent{
			Id:               uuidToProto(e.ID, uuidAsString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.Stream)},
			StreamRevision:   uint64(e.Revision),
			PreparePosition:  uint64(e.Position),
			CommitPosition:   uint64(e.Position),
			Metadata: map[string]string{
				metaType:        e.Type,
				metaContentType: e.ContentType,
				metaCreated:     ticksSinceEpoch(e.Recorded),
			},
			CustomMetadata: e.Metadata,
			Data:           e.Data,
		},
		Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: uint64(e.Position)},
	}
}

// expectedOptions is what the Append, Delete and Tombstone options have in
// common: the same four-way expected-revision oneof.
type expectedOptions interface {
	GetRevision() uint64
	GetNoStream() *shared.Empty
	GetAny() *shared.Empty
	GetStreamExists() *shared.Empty
}

// expected reads the expected revision of o; set says whether the oneof is
// set at all (its type differs per message).
func expected(o expectedOptions, set bool) (annals.ExpectedRevision, error) {
	switch {
	case !set:
		return annals.Any, errors.New("the expected stream revision is missing")
	case o.GetNoStream() != nil:
		return annals.NoStream, nil
	case o.GetStreamExists() != nil:
		return annals.StreamExists, nil
	case o.GetAny() != nil:
		return annals.Any, nil
	}
	return annals.Exact(annals.Revision(o.GetRevision())), nil
}

// proposed is a proposed message of Append or of BatchAppend: the same
// fields in two generated types.
type proposed interface {
	GetId() *shared.UUID
	GetMetadata() map[string]string
	GetCustomMetadata() []byte
	GetData() []byte
}

var (
	_ proposed = (*streams.AppendReq_ProposedMessage)(nil)
	_ proposed = (*streams.BatchAppendReq_ProposedMessage)(nil)
)

// proposedToEvent reads one proposed message of an append.
func proposedToEvent(m proposed) (annals.EventData, error) {
	id, err := uuidFromProto(m.GetId())
	if err != nil {
		return annals.EventData{}, fmt.Errorf("event id: %w", err)
	}
	md := m.GetMetadata()
	ct := md[metaContentType]
	if ct == "" {
		ct = annals.ContentTypeBinary
	}
	return annals.EventData{ID: id, Type: md[metaType], ContentType: ct, Data: m.GetData(), Metadata: m.GetCustomMetadata()}, nil
}
