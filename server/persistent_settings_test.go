package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc/status"
)

// Settings KurrentDB accepts are accepted (an upper checkpoint bound
// below the lower one, a lower bound below its default); a group asked to
// start at the end is reported so, in GetInfo and List; a missing group's
// error has KurrentDB's text.
func TestPersistentSettingsAsKurrentDB(t *testing.T) {
	addr, _ := servePersistentAt(t, t.TempDir())
	client := connect(t, addr)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.AppendToStream(ctx, "orders", kurrentdb.AppendToStreamOptions{}, event("Placed", `{}`), event("Placed", `{}`)); err != nil {
		t.Fatal(err)
	}

	settings := kurrentdb.SubscriptionSettingsDefault()
	settings.CheckpointUpperBound = 1
	if err := client.CreatePersistentSubscription(ctx, "orders", "g", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.End{}, Settings: &settings}); err != nil {
		t.Fatalf("an upper checkpoint bound below the lower one: %v", err)
	}
	info, err := client.GetPersistentSubscriptionInfo(ctx, "orders", "g", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, end := info.Settings.StartFrom.(kurrentdb.End); !end || info.Settings.CheckpointUpperBound != 1 || info.Settings.CheckpointLowerBound != settings.CheckpointLowerBound {
		t.Errorf("group from the end: start %#v, bounds %d..%d", info.Settings.StartFrom, info.Settings.CheckpointLowerBound, info.Settings.CheckpointUpperBound)
	}
	settings.CheckpointLowerBound, settings.CheckpointUpperBound = 1, 1000
	if err := client.UpdatePersistentSubscription(ctx, "orders", "g", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Revision(123), Settings: &settings}); err != nil {
		t.Fatal(err)
	}
	info, err = client.GetPersistentSubscriptionInfo(ctx, "orders", "g", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := info.Settings.StartFrom.(kurrentdb.StreamRevision); !ok || r.Value != 123 || info.Settings.CheckpointLowerBound != 1 {
		t.Errorf("updated group: start %#v, lower bound %d", info.Settings.StartFrom, info.Settings.CheckpointLowerBound)
	}

	if err := client.CreatePersistentSubscriptionToAll(ctx, "all-g", kurrentdb.PersistentAllSubscriptionOptions{StartFrom: kurrentdb.End{}}); err != nil {
		t.Fatal(err)
	}
	list, err := client.ListPersistentSubscriptionsToAll(ctx, kurrentdb.ListPersistentSubscriptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("groups on $all: %+v", list)
	}
	if _, end := list[0].Settings.StartFrom.(kurrentdb.End); !end {
		t.Errorf("$all group from the end listed with start %#v", list[0].Settings.StartFrom)
	}

	_, err = persistent.NewPersistentSubscriptionsClient(rawConn(t, addr)).GetInfo(ctx, &persistent.GetInfoReq{Options: &persistent.GetInfoReq_Options{
		StreamOption: &persistent.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("orders")}},
		GroupName:    "missing"}})
	if want := "Subscription group missing on stream orders does not exist."; status.Convert(err).Message() != want {
		t.Errorf("missing group: %v, want the text %q", err, want)
	}
}
