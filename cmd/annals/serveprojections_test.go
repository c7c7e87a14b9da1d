package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/demo/products"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The shop's events, appended with the CLI: v1 has two products, one
// renamed; v2 has one, then v2 is blocked.
var shopEvents = []struct{ stream, typ, data string }{
	{"vendor-v1", "VendorRegistered", `{"name":"Acme"}`},
	{"vendor-v2", "VendorRegistered", `{"name":"Shady"}`},
	{"product-p1", "ProductAdded", `{"vendor":"v1","title":"Anvil","price":1000}`},
	{"product-p2", "ProductAdded", `{"vendor":"v1","title":"Rope","price":200}`},
	{"product-p3", "ProductAdded", `{"vendor":"v2","title":"Fake","price":5}`},
	{"product-p1", "ProductTitleRenamed", `{"title":"Heavy anvil"}`},
	{"vendor-v2", "VendorBlocked", `{"reason":"fraud"}`},
}

// serveWithProjection runs `annals serve storeArgs... --projection
// list-of-products` until the projection has applied the shop's events,
// checking its status through `annals projections`; then stops it.
func serveWithProjection(t *testing.T, storeArgs ...string) {
	t.Helper()
	for _, e := range shopEvents {
		r := annalsCmd(append([]string{"append", "--stream", e.stream, "--type", e.typ, "--data", e.data}, storeArgs...)...)
		if r.code != 0 {
			t.Fatalf("append: exit %d, %s", r.code, r.stderr)
		}
	}
	addr, stop := serveCmd(t, io.Discard, io.Discard, append([]string{"--projection", products.ListOfProductsName}, storeArgs...)...)
	url := "kurrentdb://" + addr + "?tls=false"
	deadline := time.Now().Add(hangGuard)
	for {
		r := annalsCmd("projections", "status", products.ListOfProductsName, "--json", "--server", url)
		var st projection.Status
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st.Position >= annals.Position(len(shopEvents)) {
			if st.State != projection.Running || st.Lag != 0 || st.LastError != "" {
				t.Errorf("status: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the projection did not catch up: exit %d, %s %s", r.code, r.stdout, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}

func checkListing(t *testing.T, got []products.ListedProduct) {
	t.Helper()
	want := []products.ListedProduct{
		{Product: "p1", Vendor: "v1", Title: "Heavy anvil", Price: 1000},
		{Product: "p2", Vendor: "v1", Title: "Rope", Price: 200},
	}
	if len(got) != len(want) {
		t.Fatalf("listing %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listing %+v, want %+v", got, want)
		}
	}
}

// `annals serve --projection list-of-products` on the embedded store
// keeps the read model in a pebble target beside it.
func TestServeListOfProducts(t *testing.T) {
	db := t.TempDir() + "/shop"
	serveWithProjection(t, "--db", db)
	target, err := projection.OpenPebble(db + ".read-models")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	got, err := products.ListProductsKV(target, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkListing(t, got)

	if r := annalsCmd("serve", "--db", db, "--projection", "nope"); r.code != exitUsage || !strings.Contains(r.stderr, products.ListOfProductsName) {
		t.Errorf("an unknown projection: exit %d, %s", r.code, r.stderr)
	}
	if r := annalsCmd("serve", "--db", db, "--projection", "list-of-products,list-of-products"); r.code != exitUsage || !strings.Contains(r.stderr, "twice") {
		t.Errorf("a projection named twice: exit %d, %s", r.code, r.stderr)
	}
	if r := annalsCmd("serve", "--db", db, "--read-models", db+".elsewhere"); r.code != exitUsage || !strings.Contains(r.stderr, "--projection") {
		t.Errorf("--read-models without --projection: exit %d, %s", r.code, r.stderr)
	}
}

// The same on a PostgreSQL store: the read model in the store's database
// and schema (its tables in the projection's own schema).
func TestServeListOfProductsPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "annals_shop_" + hex.EncodeToString(b)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var target *projection.Postgres
	t.Cleanup(func() {
		if target != nil {
			if err := target.DropModels(ctx); err != nil {
				t.Error(err)
			}
		}
		pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	serveWithProjection(t, "--postgres", dsn, "--postgres-schema", schema)
	if target, err = projection.NewPostgres(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	got, err := products.ListProductsPostgres(ctx, target, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkListing(t, got)
}
