package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals/internal/teststores"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// What the official client sees of the store's KurrentDB semantics: a
// delete of a stream that never existed is a wrong expected version; an
// event id used in one stream is new to another; an $acl KurrentDB could
// not read is refused, so the stream's metadata stays readable.
func TestKurrentDBStoreSemantics(t *testing.T) {
	_, url := teststores.Serve(t)
	cfg, err := kurrentdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The Go client gives a refused delete no code of its own (it reads
	// only the stream-deleted trailer there), against KurrentDB too: the
	// status is what KurrentDB sends.
	_, err = client.DeleteStream(ctx, "never-existed", kurrentdb.DeleteStreamOptions{StreamState: kurrentdb.Any{}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "wrong expected revision") {
		t.Fatalf("DeleteStream of a stream that never existed: %v, want FailedPrecondition, wrong expected revision", err)
	}

	ev := kurrentdb.EventData{EventID: uuid.New(), EventType: "Once", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}
	for _, stream := range []string{"first", "second"} {
		if _, err := client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Any{}}, ev); err != nil {
			t.Fatalf("append of one event id to %s: %v", stream, err)
		}
	}

	var md kurrentdb.StreamMetadata
	acl := kurrentdb.Acl{}
	acl.AddWriteRoles("alice")
	md.SetAcl(acl)
	if _, err := client.SetStreamMetadata(ctx, "first", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Any{}}, md); err != nil {
		t.Fatalf("SetStreamMetadata with a valid ACL: %v", err)
	}
	bad := kurrentdb.EventData{EventType: "$metadata", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{"$acl":{"$w":7}}`)}
	if _, err := client.AppendToStream(ctx, "$$first", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Any{}}, bad); err == nil ||
		!strings.Contains(err.Error(), "$acl") {
		t.Fatalf("a raw $metadata append with a bad $acl: %v, want a refusal naming $acl", err)
	}
	got, err := client.GetStreamMetadata(ctx, "first", kurrentdb.ReadStreamOptions{})
	if err != nil || got.StreamAcl() == nil || len(got.StreamAcl().WriteRoles()) != 1 {
		t.Fatalf("GetStreamMetadata after the refused write: %+v, %v; want the valid ACL", got, err)
	}
}
