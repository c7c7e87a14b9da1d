package main

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// serveListening runs `annals serve args...` until the test ends and
// returns its log and the address it listens on, once it does.
func serveListening(t *testing.T, args ...string) (*syncBuffer, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, append([]string{"serve", "--db", filepath.Join(t.TempDir(), "db")}, args...), strings.NewReader(""), &stdout, &stderr)
	}()
	t.Cleanup(func() { cancel(); <-exited })
	listening := regexp.MustCompile(`msg=listening address=(\S+)`)
	guard := time.After(60 * time.Second) // a hang guard: serve starts in well under a second
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			return &stderr, m[1]
		}
		select {
		case code := <-exited:
			exited <- code
			t.Fatalf("serve exited %d before it listened:\n%s", code, stderr.String())
		case <-guard:
			t.Fatalf("serve did not listen within 60 s:\n%s", stderr.String())
		case <-tick.C:
		}
	}
}

// The admin's password comes from --admin-password-file (its first line),
// so it never shows in the process list.
func TestServeAdminPasswordFile(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	file := filepath.Join(dir, "password")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, addr := serveListening(t, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--admin-password-file", file)
	client := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(pass string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/projections", nil)
		req.SetBasicAuth("admin", pass)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("s3cret"); code != http.StatusOK {
		t.Fatalf("the file's password: %d, want 200", code)
	}
	if code := get("changeit"); code != http.StatusUnauthorized {
		t.Fatalf("the default password: %d, want 401", code)
	}
	if strings.Contains(log.String(), "DEFAULT") || strings.Contains(log.String(), "s3cret") {
		t.Fatalf("the log warns of the default password, or shows the password:\n%s", log.String())
	}
}

// --insecure on an address other machines reach starts, warning loudly.
func TestServeInsecureOnAnyAddressWarns(t *testing.T) {
	log, _ := serveListening(t, "--listen", "0.0.0.0:0", "--insecure")
	if !strings.Contains(log.String(), "NOT A LOOPBACK ADDRESS") {
		t.Fatalf("no warning for --insecure on 0.0.0.0:\n%s", log.String())
	}
}
