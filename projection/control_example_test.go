package projection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/projection"
)

// A registry of the projections a process runs, served over HTTP: list
// them, read one's status, pause it. In a server, mount the handler behind
// its authentication (package server does so with Options.Projections).
func ExampleRegistry_Handler() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	for range 3 {
		store.Append(ctx, "order-1", annals.Any, annals.EventData{Type: "ItemAdded", Data: []byte(`{}`)})
	}
	counts := projection.Projection[projection.KV]{
		Name: "order-count",
		Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
			return kv.Set([]byte(e.ID.String()), nil)
		},
	}
	pr, err := projection.New(store, projection.NewMemory(), counts, projection.Options{})
	if err != nil {
		panic(err)
	}
	pr.Start(ctx)
	defer pr.Stop()
	// Waits on the projector's commits, for a settled output.
	if err := pr.WaitFor(ctx, 3); err != nil {
		panic(err)
	}

	var reg projection.Registry
	if err := reg.Add(pr); err != nil {
		panic(err)
	}
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/projections")
	if err != nil {
		panic(err)
	}
	var list projection.StatusList
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	for _, st := range list.Projections {
		fmt.Println(st.Name, st.State, "position", st.Position, "lag", st.Lag)
	}

	resp, err = http.Post(srv.URL+"/api/projections/order-count/pause", "", nil)
	if err != nil {
		panic(err)
	}
	var res projection.ActionResult
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, res.Name, res.State)

	resp, err = http.Post(srv.URL+"/api/projections/nope/resume", "", nil)
	if err != nil {
		panic(err)
	}
	var failed projection.ErrorBody
	json.NewDecoder(resp.Body).Decode(&failed)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, failed.Error)
	// Output:
	// order-count running position 3 lag 0
	// 200 order-count paused
	// 404 no projection "nope"
}
