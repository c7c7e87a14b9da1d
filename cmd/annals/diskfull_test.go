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

	"github.com/annals/annals/internal/testdisk"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// diskCallHangGuard bounds one client call to the server under test.
const diskCallHangGuard = time.Minute

// `annals serve` on a 64 MiB disk that fills: the client gets a
// ResourceExhausted "disk full", the server stays up and serves reads, and
// appends succeed again once space is freed.
func TestServeDiskFull(t *testing.T) {
	mnt := testdisk.Mount(t, 64<<20)
	ballast := filepath.Join(mnt, "ballast")
	n := startServe(t, "--db", filepath.Join(mnt, "store"))
	appendOne := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), diskCallHangGuard)
		defer cancel()
		data := make([]byte, 4<<10)
		rand.Read(data)
		_, err := n.client.AppendToStream(ctx, "disk-1", kurrentdb.AppendToStreamOptions{},
			kurrentdb.EventData{EventType: "filler", ContentType: kurrentdb.ContentTypeBinary, Data: data})
		return err
	}
	if err := appendOne(); err != nil {
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
		if refused = appendOne(); refused == nil {
			acked++
		}
	}
	st, _ := status.FromError(errors.Unwrap(refused))
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "disk full") {
		t.Fatalf("append on a full disk: %v (code %v), want ResourceExhausted, disk full", refused, st.Code())
	}
	t.Logf("refused after %d appends: %v", acked, refused)

	resp, err := http.Get("http://" + n.addr + "/health/live")
	if err != nil {
		t.Fatalf("the server is gone after a full disk: %v", err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), diskCallHangGuard)
	defer cancel()
	rs, err := n.client.ReadStream(ctx, "disk-1", kurrentdb.ReadStreamOptions{}, uint64(acked)+10)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for {
		if _, err := rs.Recv(); err != nil {
			break
		}
		read++
	}
	rs.Close()
	if read != acked {
		t.Fatalf("read %d events on a full disk, %d acknowledged", read, acked)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(); err != nil {
		t.Fatalf("append after space was freed: %v", err)
	}
}
