package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
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

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "annals test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cert, "CERTIFICATE", der)
	write(key, "EC PRIVATE KEY", kder)
	return cert, key
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
