package alert_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/annals/annals/alert"
)

func ExampleDiff() {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	prev := alert.Snapshot{
		Projections: []alert.Projection{{Name: "orders", State: "running", Position: 41_000, Lag: 2_000}},
		Disk:        &alert.Disk{UsedBytes: 40 << 30, FreeBytes: 8 << 30},
	}
	cur := alert.Snapshot{
		At:          at,
		Projections: []alert.Projection{{Name: "orders", State: "running", Position: 41_200, Lag: 12_500}},
		Disk:        &alert.Disk{UsedBytes: 47 << 30, FreeBytes: 700 << 20},
	}
	alerts := alert.Diff(prev, cur, alert.Rules{})
	for _, a := range alerts {
		fmt.Println(a.Kind, a.Subject+":", a.Message)
	}
	// The same condition in the next snapshot is not told again.
	fmt.Println(len(alert.Diff(cur, cur, alert.Rules{})), "new alerts")

	body, _ := json.MarshalIndent(alerts[1], "", "  ")
	fmt.Println(string(body))
	// Output:
	// disk_nearly_full store: the disk is nearly full: 700.0 MiB free, under the threshold of 1.0 GiB (the store takes 47.0 GiB)
	// projection_lag orders: projection "orders" is 12500 events behind the head (threshold 10000)
	// 0 new alerts
	// {
	//   "version": 1,
	//   "kind": "projection_lag",
	//   "subject": "orders",
	//   "message": "projection \"orders\" is 12500 events behind the head (threshold 10000)",
	//   "at": "2026-03-01T12:00:00Z",
	//   "details": {
	//     "position": 41200,
	//     "lag": 12500,
	//     "threshold": 10000
	//   }
	// }
}

func ExampleNotifier() {
	kinds := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Kind, Subject string }
		json.NewDecoder(r.Body).Decode(&body)
		kinds <- body.Kind + " " + body.Subject
	}))
	defer receiver.Close()

	// Logger gets every alert and every failed delivery; annals serve
	// passes its own.
	n, err := alert.New(alert.Options{URLs: []string{receiver.URL}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	n.Notify(alert.Alert{Kind: alert.ProjectionFailed, Subject: "orders", Message: `projection "orders" failed`})
	fmt.Println("received", <-kinds)
	for len(n.Deliveries()) == 0 {
		time.Sleep(time.Millisecond) // the worker records the outcome after the answer
	}
	d := n.Deliveries()[0]
	fmt.Println("ok:", d.OK, "attempts:", d.Attempts, "status:", d.Status)
	// Output:
	// received projection_failed orders
	// ok: true attempts: 1 status: 200
}
