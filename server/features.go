package server

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/gossip"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
)

// ServerVersion is what Annals tells clients it is. It must parse as
// numbers. The clients enable features by the methods advertised, their
// test suites by this version: 26.1 is the KurrentDB whose protocol
// Annals serves (v2's AppendSession and AppendRecords included), and
// stays below 26.2, whose projection calls carry caller metadata that
// Annals does not keep.
const ServerVersion = "26.1.0"

// The services Annals serves, by their full protobuf names.
const (
	streamsService        = "event_store.client.streams.Streams"
	persistentService     = "event_store.client.persistent_subscriptions.PersistentSubscriptions"
	projectionsService    = "event_store.client.projections.Projections"
	gossipService         = "event_store.client.gossip.Gossip"
	serverFeaturesService = "event_store.client.server_features.ServerFeatures"
	streamsV2Service      = "kurrentdb.protocol.v2.streams.StreamsService"
)

// Methods served per service. Projections' other methods answer
// Unimplemented and are not advertised.
var (
	streamsMethods     = []string{"Read", "Append", "Delete", "Tombstone", "BatchAppend"}
	persistentMethods  = []string{"Create", "Update", "Delete", "Read", "GetInfo", "ReplayParked", "List", "RestartSubsystem"}
	projectionsMethods = []string{"Statistics", "Disable", "Enable", "Reset"}
)

// supportedMethod is a method as KurrentDB advertises it: names in lower
// case, with the features KurrentDB gives it. The clients decide by these
// features what they may ask: without "all" on the persistent
// subscription methods they refuse groups on $all, and without "stream"
// they fall back to the HTTP API.
func supportedMethod(service, method string) *serverfeatures.SupportedMethod {
	m := &serverfeatures.SupportedMethod{MethodName: strings.ToLower(method), ServiceName: strings.ToLower(service)}
	switch {
	case service == persistentService:
		m.Features = []string{"stream", "all"}
	case service == streamsService && method == "Read":
		m.Features = []string{"position", "events"}
	case service == streamsService && method == "BatchAppend":
		m.Features = []string{"deadline_duration"}
	case service == projectionsService && method == "Create":
		m.Features = []string{"track_emitted_streams"}
	}
	return m
}

// features answers ServerFeatures.GetSupportedMethods with exactly the
// methods the server serves.
type features struct {
	serverfeatures.UnimplementedServerFeaturesServer
	persistent  bool // persistent subscriptions are served
	projections bool // projections are served
}

func (f features) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	var out []*serverfeatures.SupportedMethod
	add := func(service string, methods ...string) {
		for _, m := range methods {
			out = append(out, supportedMethod(service, m))
		}
	}
	add(streamsService, streamsMethods...)
	add(streamsV2Service, "AppendSession", "AppendRecords")
	if f.persistent {
		add(persistentService, persistentMethods...)
	}
	if f.projections {
		add(projectionsService, projectionsMethods...)
	}
	add(gossipService, "Read")
	add(serverFeaturesService, "GetSupportedMethods")
	return &serverfeatures.SupportedMethods{EventStoreServerVersion: ServerVersion, Methods: out}, nil
}

// gossipServer answers as a single leader node: itself.
type gossipServer struct {
	gossip.UnimplementedGossipServer
	id   uuid.UUID
	host string
	port uint32
}

func (g *gossipServer) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   uuidToProto(g.id, false),
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: g.host, Port: g.port},
	}}}, nil
}
