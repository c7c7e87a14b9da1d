package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	v2errors "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/errors"
	v2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func v2Record(typ string) *v2.AppendRecord {
	return &v2.AppendRecord{Schema: &v2.SchemaInfo{Format: v2.SchemaFormat_SCHEMA_FORMAT_JSON, Name: typ}, Data: []byte(`{}`)}
}

// session sends reqs as one AppendSession and returns its answer.
func session(t *testing.T, addr string, reqs ...*v2.AppendRequest) (*v2.AppendSessionResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := v2.NewStreamsServiceClient(rawConn(t, addr)).AppendSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if err := c.Send(r); err != nil {
			break // the server ended the session: CloseAndRecv says why
		}
	}
	return c.CloseAndRecv()
}

func expectedRev(v int64) *int64 { return &v }

// TestAppendSessionRefusals: what KurrentDB answers, and bad stream names
// refused at the request that carries them, before the session ends.
func TestAppendSessionRefusals(t *testing.T) {
	store, addr := serve(t)
	ctx := context.Background()
	store.Append(ctx, "gone", annals.NoStream, annals.EventData{Type: "E"})
	store.Tombstone(ctx, "gone", annals.Any)
	store.Append(ctx, "at0", annals.NoStream, annals.EventData{Type: "E"})
	cases := []struct {
		name   string
		reqs   []*v2.AppendRequest
		code   codes.Code
		detail func(any) bool
	}{
		{"NoRequests", nil, codes.FailedPrecondition, nil},
		{"StreamTwice", []*v2.AppendRequest{
			{Stream: "a", Records: []*v2.AppendRecord{v2Record("E")}},
			{Stream: "a", Records: []*v2.AppendRecord{v2Record("E")}},
		}, codes.Aborted, func(d any) bool {
			x, ok := d.(*v2errors.StreamAlreadyInAppendSessionErrorDetails)
			return ok && x.GetStream() == "a"
		}},
		{"LongName", []*v2.AppendRequest{{Stream: strings.Repeat("x", annals.DefaultMaxStreamNameBytes+1), Records: []*v2.AppendRecord{v2Record("E")}}}, codes.InvalidArgument, nil},
		{"NoRecords", []*v2.AppendRequest{{Stream: "a"}}, codes.InvalidArgument, nil},
		{"TombstonedNamed", []*v2.AppendRequest{
			{Stream: "at0", Records: []*v2.AppendRecord{v2Record("E")}, ExpectedRevision: expectedRev(5)},
			{Stream: "gone", Records: []*v2.AppendRecord{v2Record("E")}},
		}, codes.FailedPrecondition, func(d any) bool {
			x, ok := d.(*v2errors.StreamTombstonedErrorDetails)
			return ok && x.GetStream() == "gone"
		}},
		{"Conflict", []*v2.AppendRequest{{Stream: "at0", Records: []*v2.AppendRecord{v2Record("E")}, ExpectedRevision: expectedRev(5)}},
			codes.FailedPrecondition, func(d any) bool {
				x, ok := d.(*v2errors.StreamRevisionConflictErrorDetails)
				return ok && x.GetStream() == "at0" && x.GetExpectedRevision() == 5 && x.GetActualRevision() == 0
			}},
	}
	for _, tc := range cases {
		_, err := session(t, addr, tc.reqs...)
		st := status.Convert(err)
		if st.Code() != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			continue
		}
		if tc.detail == nil {
			continue
		}
		details := st.Details()
		if len(details) == 0 || !tc.detail(details[len(details)-1]) {
			t.Errorf("%s: details %v", tc.name, details)
		}
	}
}
