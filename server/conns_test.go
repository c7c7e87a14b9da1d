package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// http2Preface is what a gRPC client sends first.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// stall opens n connections to addr from the local IP from that send
// only HTTP/2's preface, as a flood does.
func stall(t *testing.T, addr, from string, n int) []net.Conn {
	t.Helper()
	var out []net.Conn
	for range n {
		c, err := dialFrom(from)(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, http2Preface); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// served calls ServerFeatures from the local IP from and returns its
// status code.
func served(t *testing.T, addr, from string) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard
	defer cancel()
	_, err := serverfeatures.NewServerFeaturesClient(rawFrom(t, addr, from)).GetSupportedMethods(ctx, &shared.Empty{})
	return status.Code(err)
}

// A flood of stalled connections from one address takes that address's
// places only: another address is still served.
func TestConnectionFloodLocksOutOnlyItsAddress(t *testing.T) {
	const perAddress = 8
	var opts server.Options
	server.SetConnLimits(&opts, time.Hour, perAddress) // the flood holds its places for the whole test
	addr := teststores.ServeStore(t, teststores.Embedded(t), opts)
	if code := served(t, addr, "127.0.0.2"); code != codes.OK {
		t.Fatalf("before the flood: %v", code)
	}
	stall(t, addr, "127.0.0.2", perAddress)
	if code := served(t, addr, "127.0.0.3"); code != codes.OK {
		t.Fatalf("another address during the flood: %v, want OK", code)
	}
	if code := served(t, addr, "127.0.0.2"); code != codes.Unavailable {
		t.Fatalf("the flooding address past its %d connections: %v, want Unavailable", perAddress, code)
	}
}

// Connections that send HTTP/2's preface and then nothing are closed once
// the handshake time is over, and their places come back.
func TestStalledHandshakeClosed(t *testing.T) {
	const perAddress = 8
	var opts server.Options
	server.SetConnLimits(&opts, 100*time.Millisecond, perAddress)
	addr := teststores.ServeStore(t, teststores.Embedded(t), opts)
	for i, c := range stall(t, addr, "127.0.0.2", perAddress) {
		c.SetReadDeadline(time.Now().Add(60 * time.Second)) // a hang guard: a normal run takes well under a second
		_, err := io.Copy(io.Discard, c)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("stalled connection %d still open after 60 s", i)
		}
	}
	if code := served(t, addr, "127.0.0.2"); code != codes.OK {
		t.Fatalf("after the stalled connections were closed: %v, want OK", code)
	}
}
