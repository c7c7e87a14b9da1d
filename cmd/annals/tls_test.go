package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "annals test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for name, block := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: der}, key: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}

// Against a TLS server, each mistake in the URL gets its hint.
func TestErrorsTLSServer(t *testing.T) {
	cert, key := selfSigned(t, t.TempDir())
	addr, stop := serveCmd(t, io.Discard, io.Discard, "--db", t.TempDir(), "--tls-cert", cert, "--tls-key", key, "--admin-password", "s3cret")
	defer stop()
	for _, tc := range []struct{ url, want string }{
		{"kurrentdb://" + addr + "?tls=false", "drop tls=false"},
		{"kurrentdb://admin:s3cret@" + addr, "give the CA that signed it with tlsCAFile"},
		{"kurrentdb://admin:wrong@" + addr + "?tlsCAFile=" + cert, "refused the credentials"},
	} {
		r := runArgs("read-all", "--server", tc.url)
		if r.code != exitFailure || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "[Error") {
			t.Errorf("read-all --server %s: exit %d, stderr %q, want %q", tc.url, r.code, r.stderr, tc.want)
		}
	}
	if r := runArgs("read-all", "--server", "kurrentdb://admin:s3cret@"+addr+"?tlsCAFile="+cert); r.code != exitOK {
		t.Fatalf("the right URL: exit %d, stderr %q", r.code, r.stderr)
	}
}
