package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
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

// gate checks the calls' credentials, throttling the addresses that fail
// (throttle.go).
type gate struct {
	creds    Credentials
	throttle *authThrottle
}

func newGate(c Credentials) *gate { return &gate{creds: c, throttle: newAuthThrottle()} }

// check checks user and pass from addr: a nil error, or errThrottled, or
// errBadCredentials.
func (g *gate) check(addr net.Addr, header string, parse func(string) (string, string, bool)) error {
	if wait := g.throttle.wait(addr); wait > 0 {
		return &throttledError{wait: wait}
	}
	user, pass, ok := parse(header)
	if !ok || !g.creds(user, pass) {
		g.throttle.failed(addr)
		return errBadCredentials
	}
	return nil
}

var errBadCredentials = fmt.Errorf("bad credentials")

// throttledError refuses an address that failed too often.
type throttledError struct{ wait time.Duration }

func (e *throttledError) Error() string {
	return fmt.Sprintf("too many failed authentications from this address: retry in %s", e.wait.Round(time.Second)+time.Second)
}

// authorize answers as KurrentDB does: bad credentials are Unauthenticated,
// none at all is access denied; an address throttled is ResourceExhausted.
func (g *gate) authorize(ctx context.Context, method string) error {
	if g.creds == nil || openMethods[method] {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	if len(auth) == 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "access-denied"))
		return status.Error(codes.PermissionDenied, "access denied: this server requires credentials")
	}
	var addr net.Addr
	if p, ok := peer.FromContext(ctx); ok {
		addr = p.Addr
	}
	err := g.check(addr, auth[0], parseBasic)
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		return status.Error(codes.ResourceExhausted, err.Error())
	case err != nil:
		return status.Error(codes.Unauthenticated, err.Error())
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

func (g *gate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := g.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (g *gate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := g.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
