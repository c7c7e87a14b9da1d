package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/testdisk"
	"github.com/annals/annals/remote"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// diskCallHangGuard bounds one client call to the server under test.
const diskCallHangGuard = time.Minute

const diskStream = "disk-1"

// appendFiller appends 4 KiB of random data (it does not compress).
func appendFiller(c *kurrentdb.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), diskCallHangGuard)
	defer cancel()
	data := make([]byte, 4<<10)
	rand.Read(data)
	_, err := c.AppendToStream(ctx, diskStream, kurrentdb.AppendToStreamOptions{},
		kurrentdb.EventData{EventType: "filler", ContentType: kurrentdb.ContentTypeBinary, Data: data})
	return err
}

// wantDiskFull fails the test unless err is the server's disk-full answer
// and says more (the message names the free space or read-only).
func wantDiskFull(t *testing.T, err error, more string) {
	t.Helper()
	st, _ := status.FromError(errors.Unwrap(err))
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "disk full") || !strings.Contains(st.Message(), more) {
		t.Fatalf("append on a full disk: %v (code %v), want ResourceExhausted, disk full, %q", err, st.Code(), more)
	}
}

// checkServing fails the test unless the node answers /health/live and its
// stream has want events.
func checkServing(t *testing.T, n *node, want int) {
	t.Helper()
	resp, err := http.Get("http://" + n.addr + "/health/live")
	if err != nil {
		t.Fatalf("the server is gone: %v", err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), diskCallHangGuard)
	defer cancel()
	rs, err := n.client.ReadStream(ctx, diskStream, kurrentdb.ReadStreamOptions{}, uint64(want)+10)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	read := 0
	for ; ; read++ {
		if _, err := rs.Recv(); err != nil {
			break
		}
	}
	if read != want {
		t.Fatalf("read %d events, %d acknowledged", read, want)
	}
}

// `annals serve` on a 64 MiB disk that fills: the client gets a
// ResourceExhausted "disk full", the server stays up and serves reads, and
// appends succeed again once space is freed. Restarted on a full disk, it
// comes up read-only, and writable once space is freed.
func TestServeDiskFull(t *testing.T) {
	mnt := testdisk.Mount(t, 64<<20)
	ballast, db := filepath.Join(mnt, "ballast"), filepath.Join(mnt, "store")
	n := startServe(t, "--db", db)
	if err := appendFiller(n.client); err != nil {
		t.Fatal(err)
	}
	acked := 1
	// The store keeps at least 16 MiB (embedded.MinDiskReserveBytes) free;
	// leave 20 and append until refused, twice the disk at most.
	testdisk.Fill(t, ballast, 20<<20)
	var refused error
	for i := 0; refused == nil; i++ {
		if i > 2*(64<<20)/(4<<10) {
			t.Fatalf("%d appends, none refused (%s)", i, testdisk.String(t, mnt))
		}
		if refused = appendFiller(n.client); refused == nil {
			acked++
		}
	}
	wantDiskFull(t, refused, "bytes free")
	t.Logf("refused after %d appends: %v", acked, refused)
	checkServing(t, n, acked)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := appendFiller(n.client); err != nil {
		t.Fatalf("append after space was freed: %v", err)
	}
	acked++

	n.stop(t)
	testdisk.Fill(t, ballast, 0)
	n = startServe(t, "--db", db)
	checkServing(t, n, acked)
	wantDiskFull(t, appendFiller(n.client), "read-only")
	// Through package remote, the same sentinel as a local store's.
	r, err := remote.Dial("kurrentdb://" + n.addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), diskCallHangGuard)
	defer cancel()
	if _, err := r.Append(ctx, diskStream, annals.Any, annals.EventData{Type: "filler", Data: []byte("{}")}); !errors.Is(err, annals.ErrDiskFull) {
		t.Fatalf("append through remote on a full disk: %v, want annals.ErrDiskFull", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := appendFiller(n.client); err != nil {
		t.Fatalf("append after space was freed, on a server started read-only: %v", err)
	}
	checkServing(t, n, acked+1)
}
