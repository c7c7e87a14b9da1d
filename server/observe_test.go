package server_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/server"
)

// TestInfo: /info names the product's version, the protocol's and the
// store, without credentials.
func TestInfo(t *testing.T) {
	store := teststores.Embedded(t)
	addr := teststores.ServeStore(t, store, server.Options{Info: server.Info{Version: "9.9.9", Store: "embedded"}})
	resp, err := http.Get("http://" + addr + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info server.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "9.9.9" || info.DBVersion != server.ServerVersion || info.Store != "embedded" ||
		info.ProtocolVersion != server.ProtocolVersion || info.State != "leader" || info.UptimeSeconds < 0 || info.StartedAt == "" {
		t.Errorf("/info = %+v", info)
	}
}

// TestReady: /health/ready says 204 while the store takes writes, 503 with
// the reason once it does not (here: closed), and writes nothing.
func TestReady(t *testing.T) {
	store := teststores.Embedded(t)
	addr := teststores.ServeStore(t, store, server.Options{})
	get := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != http.StatusNoContent {
		t.Fatalf("ready: %d %s", code, body)
	}
	for _, err := range store.ReadAll(t.Context(), annalsReadOne) {
		t.Fatalf("the readiness check wrote something (or the read failed: %v)", err)
	}
	store.Close()
	code, body := get()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "closed") {
		t.Errorf("ready on a closed store: %d %q, want 503 saying closed", code, body)
	}
	// /metrics is served only when given.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without Options.Metrics: %s, want 404", resp.Status)
	}
}

var annalsReadOne = annals.ReadAllOptions{Limit: 1}

// TestALPNByClient: over TLS a client that offers only h2 (the gRPC
// clients) gets h2, one that offers http/1.1 too (a browser, curl) gets
// http/1.1 and the HTTP endpoints.
func TestALPNByClient(t *testing.T) {
	store := teststores.Embedded(t)
	addr := teststores.ServeStore(t, store, server.Options{TLS: teststores.SelfSignedTLS(t)})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"h2"}, "h2"},
		{[]string{"h2", "http/1.1"}, "http/1.1"},
		{[]string{"http/1.1"}, "http/1.1"},
		{nil, ""},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: tc.offer})
		if err != nil {
			t.Fatalf("offering %v: %v", tc.offer, err)
		}
		if got := conn.ConnectionState().NegotiatedProtocol; got != tc.want {
			t.Errorf("offering %v: negotiated %q, want %q", tc.offer, got, tc.want)
		}
		conn.Close()
	}
	browser := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err := browser.Get("https://" + addr + "/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("/health/live over TLS from a client that offers h2 and http/1.1: %s", resp.Status)
	}
}
