package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/annals/annals"
	"github.com/annals/annals/console"
	"github.com/annals/annals/memory"
)

// The console over a store, asked for a stream's last page as its page
// does (package server mounts it at "/" behind its credentials).
func Example() {
	store := memory.New(memory.Options{})
	defer store.Close()
	store.Append(context.Background(), "order-1", annals.NoStream,
		annals.EventData{Type: "OrderPlaced", Data: []byte(`{"total":12}`)},
		annals.EventData{Type: "OrderPaid", Data: []byte(`{}`)})
	h := console.New(console.Options{Store: store})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/console/api/stream?name=order-1&direction=backwards", nil))
	var page struct {
		Events []struct {
			Revision int    `json:"revision"`
			Type     string `json:"type"`
		} `json:"events"`
		Next *uint64 `json:"next"`
	}
	json.NewDecoder(rec.Body).Decode(&page)
	for _, e := range page.Events {
		fmt.Println(e.Revision, e.Type)
	}
	fmt.Println("next page:", page.Next)
	// Output:
	// 1 OrderPaid
	// 0 OrderPlaced
	// next page: <nil>
}
