package server

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/gossip"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
)

// ServerVersion is what Annals tells clients it is. It must parse as
// numbers (clients enable features by it): 24.x is the protocol generation
// whose messages Annals sends.
const ServerVersion = "24.10.0"

// features answers ServerFeatures.GetSupportedMethods with exactly the
// methods Annals implements.
type features struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (features) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const svc = "event_store.client.streams.streams"
	m := func(name string) *serverfeatures.SupportedMethod {
		return &serverfeatures.SupportedMethod{MethodName: name, ServiceName: svc}
	}
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: ServerVersion,
		Methods:                 []*serverfeatures.SupportedMethod{m("read"), m("append"), m("batchappend"), m("delete"), m("tombstone")},
	}, nil
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

// persistentMethods are the PersistentSubscriptions methods, named as the
// clients look for them: "create" with the feature "all" enables groups on
// $all; without "getinfo", "list", "replayparked" and "restartsubsystem"
// the clients fall back to HTTP.
func persistentMethods() []*serverfeatures.SupportedMethod {
	const svc = "event_store.client.persistent_subscriptions.persistentsubscriptions"
	var out []*serverfeatures.SupportedMethod
	for _, name := range []string{"create", "update", "delete", "read", "getinfo", "replayparked", "list", "restartsubsystem"} {
		m := &serverfeatures.SupportedMethod{MethodName: name, ServiceName: svc}
		if name == "create" {
			m.Features = []string{"stream", "all"}
		}
		out = append(out, m)
	}
	return out
}

// projectionMethods are the Projections methods served over a registry
// (projections_grpc.go); the others answer Unimplemented and are not
// advertised.
func projectionMethods() []*serverfeatures.SupportedMethod {
	const svc = "event_store.client.projections.projections"
	var out []*serverfeatures.SupportedMethod
	for _, name := range []string{"statistics", "disable", "enable", "reset"} {
		out = append(out, &serverfeatures.SupportedMethod{MethodName: name, ServiceName: svc})
	}
	return out
}

// advertised adds the persistent subscription and projection methods to
// what features answers, when the server serves them.
type advertised struct {
	features
	persistent  bool
	projections bool
}

func (a advertised) GetSupportedMethods(ctx context.Context, e *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	resp, err := a.features.GetSupportedMethods(ctx, e)
	if err == nil && a.persistent {
		resp.Methods = append(resp.Methods, persistentMethods()...)
	}
	if err == nil && a.projections {
		resp.Methods = append(resp.Methods, projectionMethods()...)
	}
	return resp, err
}
