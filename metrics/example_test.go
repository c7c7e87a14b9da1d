package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/metrics"
)

// Measure an embedded store and read its series as Prometheus would.
func Example() {
	dir, _ := os.MkdirTemp("", "annals-metrics-example")
	defer os.RemoveAll(dir)

	m := metrics.New()
	raw, err := embedded.Open(dir, embedded.Options{OnGroupCommit: m.ObserveGroupCommit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer raw.Close()
	store := m.Store(raw) // use this one: what goes through it is counted

	ctx := context.Background()
	store.Append(ctx, "order-1", annals.NoStream, annals.EventData{Type: "Placed", Data: []byte(`{}`)})
	store.Append(ctx, "order-1", annals.NoStream, annals.EventData{Type: "Placed", Data: []byte(`{}`)}) // refused

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "annals_appends_total{outcome=\"ok\"}") ||
			strings.HasPrefix(line, "annals_appends_total{outcome=\"wrong_expected\"}") ||
			strings.HasPrefix(line, "annals_head_position") {
			fmt.Println(line)
		}
	}
	// Output:
	// annals_appends_total{outcome="ok"} 1
	// annals_appends_total{outcome="wrong_expected"} 1
	// annals_head_position 1
}
