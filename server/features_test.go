package server_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
)

// serveSystem serves a fresh embedded store that allows system streams,
// as annals serve does, with opts (its Limits are set here).
func serveSystem(t *testing.T, opts server.Options) (*embedded.Store, string) {
	t.Helper()
	opts.Limits = annals.Limits{AllowSystemStreams: true}.WithDefaults()
	store, err := embedded.Open(t.TempDir(), embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: opts.Limits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, teststores.ServeStore(t, store, opts)
}

// TestServerFeaturesAsKurrentDB checks the advertised methods against the
// rule of KurrentDB's ServerFeatures: every PersistentSubscriptions method
// has the features "stream" and "all", Streams.Read "position" and
// "events", Streams.BatchAppend "deadline_duration"; names in lower case.
// The Node client refuses groups on $all without "all" on the method it
// calls.
func TestServerFeaturesAsKurrentDB(t *testing.T) {
	_, addr := serveSystem(t, server.Options{Projections: serveproj.Registry(projection.NewRegistry())})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := serverfeatures.NewServerFeaturesClient(rawConn(t, addr)).GetSupportedMethods(ctx, &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetEventStoreServerVersion() != server.ServerVersion {
		t.Errorf("version %q", resp.GetEventStoreServerVersion())
	}
	got := map[string]string{}
	for _, m := range resp.GetMethods() {
		got[m.GetServiceName()+"/"+m.GetMethodName()] = strings.Join(m.GetFeatures(), ",")
	}
	const (
		sm = "event_store.client.streams.streams/"
		ps = "event_store.client.persistent_subscriptions.persistentsubscriptions/"
		pr = "event_store.client.projections.projections/"
	)
	want := map[string]string{
		sm + "read": "position,events", sm + "append": "", sm + "batchappend": "deadline_duration",
		sm + "delete": "", sm + "tombstone": "",
		pr + "statistics": "", pr + "disable": "", pr + "enable": "", pr + "reset": "",
		"event_store.client.gossip.gossip/read":                                 "",
		"event_store.client.server_features.serverfeatures/getsupportedmethods": "",
		"kurrentdb.protocol.v2.streams.streamsservice/appendsession":            "",
		"kurrentdb.protocol.v2.streams.streamsservice/appendrecords":            "",
	}
	for _, m := range []string{"create", "update", "delete", "read", "getinfo", "replayparked", "list", "restartsubsystem"} {
		want[ps+m] = "stream,all"
	}
	var diff []string
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			diff = append(diff, k+": got ["+g+"], want ["+v+"]")
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, k+": advertised, not served")
		}
	}
	slices.Sort(diff)
	if len(diff) > 0 || len(resp.GetMethods()) != len(want) {
		t.Errorf("%d methods advertised:\n%s", len(resp.GetMethods()), strings.Join(diff, "\n"))
	}
}
