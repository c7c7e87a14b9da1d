package remote

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/dcbpb"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	v2errors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// v2Conn is a connection of its own to a single server for the protocol
// v2 appends. The official client sends v2 properties only as strings
// (it refuses metadata such as {"schemaVersion":1}); the protocol takes
// any JSON value, so AppendMulti speaks it directly. A cluster's URL
// (several hosts) has no one address to dial: AppendMulti then goes
// through the client, with its rule.
type v2Conn struct {
	conn *grpc.ClientConn
	auth string // the authorization header, or "" (none without TLS, as the client)
}

func dialV2(cfg *kurrentdb.Configuration) (*v2Conn, error) {
	creds := insecure.NewCredentials()
	auth := ""
	if !cfg.DisableTLS {
		creds = credentials.NewTLS(&tls.Config{RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.SkipCertificateVerification})
		if cfg.Username != "" {
			auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password))
		}
	}
	conn, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	return &v2Conn{conn: conn, auth: auth}, nil
}

// appendRecords sends m as one AppendRecords.
func (c *v2Conn) appendRecords(ctx context.Context, m annals.MultiAppend) (*v2.AppendRecordsResponse, error) {
	req := &v2.AppendRecordsRequest{}
	for i, r := range m.Records {
		rec, err := toRecord(r)
		if err != nil {
			return nil, &annals.InvalidInputError{Field: fmt.Sprintf("record[%d].metadata", i), Reason: err.Error()}
		}
		req.Records = append(req.Records, rec)
	}
	for _, ch := range m.Checks {
		req.Checks = append(req.Checks, &v2.ConsistencyCheck{Type: &v2.ConsistencyCheck_StreamState{
			StreamState: &v2.ConsistencyCheck_StreamStateCheck{Stream: ch.Stream, ExpectedState: dcbpb.RawState(ch.Expected)},
		}})
	}
	return v2.NewStreamsServiceClient(c.conn).AppendRecords(c.outgoing(ctx), req)
}

// toRecord is an event as a v2 record: its metadata (a JSON object, or
// none) as the properties.
func toRecord(r annals.Record) (*v2.AppendRecord, error) {
	e := eventData(r.Event)
	props := map[string]*structpb.Value{}
	if len(e.Metadata) > 0 {
		var m map[string]any
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			return nil, errors.New("the KurrentDB protocol's multi-stream append carries metadata only as a JSON object")
		}
		for k, v := range m {
			pv, err := structpb.NewValue(v)
			if err != nil {
				return nil, err
			}
			props[k] = pv
		}
	}
	format := v2.SchemaFormat_SCHEMA_FORMAT_BYTES
	if e.ContentType == kurrentdb.ContentTypeJson {
		format = v2.SchemaFormat_SCHEMA_FORMAT_JSON
	}
	id := e.EventID.String()
	return &v2.AppendRecord{RecordId: &id, Stream: r.Stream, Properties: props, Data: e.Data,
		Schema: &v2.SchemaInfo{Format: format, Name: e.EventType}}, nil
}

// v2Violations reads the violations out of a status, if it carries them.
func v2Violations(err error, m annals.MultiAppend) (*annals.ConsistencyError, string, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, "", false
	}
	written := map[string]bool{}
	for _, r := range m.Records {
		written[r.Stream] = true
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *v2errors.AppendConsistencyViolationErrorDetails:
			ce := &annals.ConsistencyError{}
			for _, v := range d.GetViolations() {
				ss := v.GetStreamState()
				cv := kurrentdb.ConsistencyViolation{CheckIndex: v.GetCheckIndex(), Stream: ss.GetStream(),
					ActualState: kurrentdb.StreamRevision{Value: uint64(ss.GetActualState())}}
				if a := ss.GetActualState(); a == -1 {
					cv.ActualState = kurrentdb.NoStream{}
				}
				ce.Violations = append(ce.Violations, violation(cv, m.Checks, written))
			}
			return ce, "", true
		case *v2errors.StreamTombstonedErrorDetails:
			return nil, d.GetStream(), true
		}
	}
	return nil, "", false
}
