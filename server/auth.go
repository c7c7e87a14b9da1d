package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Credentials checks HTTP Basic credentials. With TLS, every call but the
// connection handshake (ServerFeatures, Gossip) must carry valid ones.
type Credentials func(user, password string) bool

// AdminCredentials accepts the built-in admin user with password.
func AdminCredentials(password string) Credentials {
	return func(user, pass string) bool {
		return user == "admin" && subtle.ConstantTimeCompare([]byte(pass), []byte(password)) == 1
	}
}

// openMethods answer without credentials: clients call them before they
// authenticate anything.
var openMethods = map[string]bool{
	"/event_store.client.server_features.ServerFeatures/GetSupportedMethods": true,
	"/event_store.client.gossip.Gossip/Read":                                 true,
}

// authorize answers as KurrentDB does: bad credentials are Unauthenticated,
// none at all is access denied.
func (c Credentials) authorize(ctx context.Context, method string) error {
	if c == nil || openMethods[method] {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	if len(auth) == 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "access-denied"))
		return status.Error(codes.PermissionDenied, "access denied: this server requires credentials")
	}
	user, pass, ok := parseBasic(auth[0])
	if !ok || !c(user, pass) {
		return status.Error(codes.Unauthenticated, "bad credentials")
	}
	return nil
}

func parseBasic(header string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(header[len(prefix):])
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

func (c Credentials) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := c.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (c Credentials) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := c.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
