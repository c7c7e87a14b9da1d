package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// hangGuard bounds the tests' waits on a condition (a server up, a
// projection caught up, a child exited): far above any normal run, only
// there so that a broken build fails instead of hanging. No verdict
// depends on the machine's speed.
const hangGuard = 5 * time.Minute

// serveCmd runs `annals serve args... --listen <a free loopback port>` in
// a goroutine and waits until it answers /health/live. stop ends it as
// SIGINT does and returns its exit code.
func serveCmd(t *testing.T, stdout, stderr io.Writer, args ...string) (addr string, stop func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, append(append([]string{"serve"}, args...), "--listen", addr), strings.NewReader(""), stdout, stderr)
	}()
	stop = func() int {
		cancel()
		select {
		case code := <-exited:
			return code
		case <-time.After(hangGuard):
			t.Fatal("serve did not stop")
			return -1
		}
	}
	probe, scheme := http.DefaultClient, "http://"
	if slices.Contains(args, "--tls-cert") {
		// The probe checks that it serves, not whom: the tests check that.
		probe = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		scheme = "https://"
	}
	deadline := time.Now().Add(hangGuard)
	for {
		resp, err := probe.Get(scheme + addr + "/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				stop()
				t.Fatalf("/health/live: %d", resp.StatusCode)
			}
			return addr, stop
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d before it served", code)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the server did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
