package server_test

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// dialFrom connects to addr from the local IP from (127.0.0.x: each is
// another remote address to the server).
func dialFrom(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
}

// rawFrom is a raw gRPC connection to addr from the local IP from.
func rawFrom(t *testing.T, addr, from string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialFrom(from)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// deleteAs calls Streams.Delete with Basic credentials and returns the
// status code.
func deleteAs(t *testing.T, conn *grpc.ClientConn, user, pass string) codes.Code {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization",
		"Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	_, err := streams.NewStreamsClient(conn).Delete(ctx, &streams.DeleteReq{Options: &streams.DeleteReq_Options{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("order-1")}, ExpectedStreamRevision: &streams.DeleteReq_Options_Any{Any: &shared.Empty{}}}})
	return status.Code(err)
}

// After AuthFailureBurst wrong passwords an address is refused without its
// password being checked (the right one too), while another address is
// served; over HTTP as over gRPC.
func TestFailedAuthenticationThrottled(t *testing.T) {
	stopped := time.Now()
	server.SetAuthClock(t, func() time.Time { return stopped }) // no try refills during the test
	store := teststores.Embedded(t)
	if _, err := store.Append(context.Background(), "order-1", annals.Any, annals.EventData{Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	addr := teststores.ServeStore(t, store, server.Options{Credentials: server.AdminCredentials("secret"),
		Projections: serveproj.Registry(projection.NewRegistry())})

	guesser := rawFrom(t, addr, "127.0.0.1")
	for i := range server.AuthFailureBurst {
		if code := deleteAs(t, guesser, "admin", "guess"); code != codes.Unauthenticated {
			t.Fatalf("wrong password %d: %v, want Unauthenticated", i+1, code)
		}
	}
	if code := deleteAs(t, guesser, "admin", "guess"); code != codes.ResourceExhausted {
		t.Fatalf("wrong password %d: %v, want ResourceExhausted (throttled)", server.AuthFailureBurst+1, code)
	}
	if code := deleteAs(t, guesser, "admin", "secret"); code != codes.ResourceExhausted {
		t.Fatalf("right password from the throttled address: %v, want ResourceExhausted (not checked)", code)
	}
	if code := deleteAs(t, rawFrom(t, addr, "127.0.0.2"), "admin", "secret"); code != codes.OK {
		t.Fatalf("right password from another address: %v, want OK", code)
	}

	// HTTP shares the table: the guesser's address is refused there too.
	get := func(from, pass string) int {
		t.Helper()
		c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			return dialFrom(from)(ctx, a)
		}}}
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/projections", nil)
		req.SetBasicAuth("admin", pass)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("127.0.0.1", "secret"); code != http.StatusTooManyRequests {
		t.Fatalf("HTTP from the throttled address: %d, want 429", code)
	}
	for i := range server.AuthFailureBurst {
		if code := get("127.0.0.3", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("HTTP wrong password %d: %d, want 401", i+1, code)
		}
	}
	if code := get("127.0.0.3", "guess"); code != http.StatusTooManyRequests {
		t.Fatalf("HTTP wrong password %d: %d, want 429", server.AuthFailureBurst+1, code)
	}
	if code := get("127.0.0.4", "secret"); code != http.StatusOK {
		t.Fatalf("HTTP right password from another address: %d, want 200", code)
	}
}
