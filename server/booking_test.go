package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// The mission's race, over the wire: 64 official clients book seats of one
// show with capacity 100, each reading the stream, deciding, and appending
// at the revision it read, retrying on conflict. Never more than 100
// booked; exactly 100 once demand exceeds supply.
func TestSeatBookingOverGRPC(t *testing.T) {
	const (
		capacity = 100
		clients  = 64
		attempts = 3 // bookings each client wants: 192 > 100
		stream   = "show-42"
	)
	_, addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	var booked, soldOut, conflicts atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := connect(t, addr) // one connection per client, as separate processes would have
			defer client.Close()
			for i := 0; i < attempts; {
				seats, state, err := load(ctx, client, stream)
				if err != nil {
					t.Error(err)
					return
				}
				if seats >= capacity {
					soldOut.Add(1)
					return
				}
				data, _ := json.Marshal(map[string]int{"client": c, "seat": seats + 1})
				_, err = client.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: state},
					event("SeatBooked", string(data)))
				var kerr *kurrentdb.Error
				switch {
				case err == nil:
					booked.Add(1)
					i++
				case errors.As(err, &kerr) && kerr.Code() == kurrentdb.ErrorCodeWrongExpectedVersion:
					conflicts.Add(1) // someone booked first: load again
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	client := connect(t, addr)
	defer client.Close()
	seats, _, err := load(ctx, client, stream)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d booked, %d conflicts retried, %d clients found it sold out", booked.Load(), conflicts.Load(), soldOut.Load())
	if seats != capacity || booked.Load() != capacity {
		t.Fatalf("the stream holds %d bookings and %d were acknowledged; want exactly %d", seats, booked.Load(), capacity)
	}
}

// load replays the show: how many seats are booked, and the state to
// expect when appending the next booking.
func load(ctx context.Context, client *kurrentdb.Client, stream string) (int, kurrentdb.StreamState, error) {
	rs, err := client.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{}, 1<<62)
	if err != nil {
		return 0, nil, err
	}
	defer rs.Close()
	seats := 0
	var state kurrentdb.StreamState = kurrentdb.NoStream{}
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return seats, state, nil
		}
		var kerr *kurrentdb.Error
		if errors.As(err, &kerr) && kerr.Code() == kurrentdb.ErrorCodeResourceNotFound {
			return 0, kurrentdb.NoStream{}, nil
		}
		if err != nil {
			return 0, nil, err
		}
		seats++
		state = kurrentdb.StreamRevision{Value: e.Event.EventNumber}
	}
}

func connect(t *testing.T, addr string) *kurrentdb.Client {
	cfg, err := kurrentdb.ParseConnectionString(fmt.Sprintf("kurrentdb://%s?tls=false", addr))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}
