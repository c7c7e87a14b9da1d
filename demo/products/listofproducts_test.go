package products_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
	"github.com/annals/annals/demo/products"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5/pgxpool"
)

// catchUpTimeout bounds the wait for a projector to reach the head in
// the tests (they hold a few dozen events): a hang guard, far above the
// milliseconds it takes, so that a loaded machine never fails a test.
const catchUpTimeout = 5 * time.Minute

func newShop(s annals.Store) *products.Shop {
	return &products.Shop{
		Vendors:  &command.Handler[products.Vendor, products.VendorCommand, products.Event]{Store: s, Decider: products.Vendors, Codec: products.Codec},
		Products: &command.Handler[products.Product, products.ProductCommand, products.Event]{Store: s, Decider: products.Products, Codec: products.Codec},
	}
}

// shopScenario runs a day of the shop through the command side and
// returns the head of the log and the listing the read model must show.
// One product of a blocked vendor is appended as AddProduct's non-atomic
// check lets it through (the vendor blocked between the check and the
// append), and a product of the blocked vendor is renamed after the
// block: neither may be listed. A product of another vendor is deleted
// and added again by a third: it is listed there only.
func shopScenario(t testing.TB, ctx context.Context, s annals.Store) (annals.Position, []products.ListedProduct) {
	t.Helper()
	shop := newShop(s)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	vendor := func(id string, c products.VendorCommand) {
		t.Helper()
		_, err := shop.Vendors.Handle(ctx, products.VendorStream(id), c)
		must(err)
	}
	product := func(id string, c products.ProductCommand) {
		t.Helper()
		_, err := shop.Products.Handle(ctx, products.ProductStream(id), c)
		must(err)
	}
	add := func(id, v, title string, price int) {
		t.Helper()
		_, err := shop.AddProduct(ctx, id, v, title, price)
		must(err)
	}

	vendor("acme", products.RegisterVendor{Name: "Acme"})
	vendor("bolt", products.RegisterVendor{Name: "Bolt & Co"})
	vendor("crook", products.RegisterVendor{Name: "Crook"})
	add("p1", "acme", "Anvil", 5000)
	add("p2", "acme", "Rocket", 9000)
	add("p3", "bolt", "Bolt", 10)
	add("p4", "crook", "Fake watch", 2000)
	add("p5", "bolt", "Nut", 5)
	add("p7", "crook", "Fake bag", 3000)
	product("p1", products.RenameProduct{Title: "Big anvil"})
	product("p3", products.ChangePrice{Price: 12})
	product("p5", products.WithdrawProduct{})
	vendor("crook", products.BlockVendor{Reason: "counterfeits"})
	if _, err := shop.AddProduct(ctx, "p6", "crook", "Fake shoe", 100); err == nil {
		t.Fatal("a blocked vendor added a product through the shop")
	}
	// The race AddProduct cannot close: its vendor check passed just
	// before the block, its append lands just after.
	late, err := products.Codec.Encode(products.ProductAdded{Vendor: "crook", Title: "Fake shoe", Price: 100})
	must(err)
	_, err = s.Append(ctx, products.ProductStream("p6"), annals.NoStream, late)
	must(err)
	product("p4", products.RenameProduct{Title: "Real watch"})
	product("p7", products.ChangePrice{Price: 10})
	product("p2", products.ChangePrice{Price: 8500})
	add("p8", "bolt", "Washer", 3)
	// A product's stream deleted and written anew, now another vendor's:
	// its revisions go on, and its old place in the model must go.
	_, err = s.Delete(ctx, products.ProductStream("p2"), annals.Any)
	must(err)
	again, err := products.Codec.Encode(products.ProductAdded{Vendor: "bolt", Title: "Bag", Price: 50})
	must(err)
	res, err := s.Append(ctx, products.ProductStream("p2"), annals.Any, again)
	must(err)
	if res.NextExpected == annals.Exact(0) {
		t.Fatal("the stream written anew starts again at revision 0")
	}

	var head annals.Position
	for e, err := range s.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		must(err)
		head = e.Position
	}
	return head, []products.ListedProduct{
		{Product: "p1", Vendor: "acme", Title: "Big anvil", Price: 5000},
		{Product: "p2", Vendor: "bolt", Title: "Bag", Price: 50},
		{Product: "p3", Vendor: "bolt", Title: "Bolt", Price: 12},
		{Product: "p8", Vendor: "bolt", Title: "Washer", Price: 3},
	}
}

// catchUp runs p over s into target until it has applied head, then
// stops it.
func catchUp[M any](t testing.TB, ctx context.Context, s annals.Store, target projection.Target[M], p projection.Projection[M], head annals.Position, opts projection.Options) {
	t.Helper()
	pr, err := projection.New(s, target, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(catchUpTimeout)
	for pr.Position() < head {
		if time.Now().After(deadline) {
			st, _ := pr.Status(ctx)
			pr.Stop()
			t.Fatalf("not caught up with %d: %+v", head, st)
		}
		time.Sleep(time.Millisecond)
	}
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
}

func checkListing(t *testing.T, name string, got, want []products.ListedProduct, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
	}
}

func vendorRows(all []products.ListedProduct, vendor string) []products.ListedProduct {
	var out []products.ListedProduct
	for _, r := range all {
		if r.Vendor == vendor {
			out = append(out, r)
		}
	}
	return out
}

func checkKV(t *testing.T, s products.KVScanner, want []products.ListedProduct) {
	t.Helper()
	got, err := products.ListProductsKV(s, 0)
	checkListing(t, "all", got, want, err)
	for _, v := range []string{"acme", "bolt", "crook", "nobody"} {
		got, err := products.VendorProductsKV(s, v, 0)
		checkListing(t, v, got, vendorRows(want, v), err)
	}
	got, err = products.ListProductsKV(s, 2)
	checkListing(t, "first two", got, want[:2], err)
}

func TestListOfProductsKV(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*catchUpTimeout)
	defer cancel()
	s := memory.New(memory.Options{})
	defer s.Close()
	head, want := shopScenario(t, ctx, s)

	t.Run("memory", func(t *testing.T) {
		target := projection.NewMemory()
		// Batches of one and of everything: the flag and the deletion
		// must hold across transactions and inside one.
		catchUp(t, ctx, s, target, products.ListOfProductsKV(), head, projection.Options{BatchEvents: 1})
		checkKV(t, products.MemoryScanner(target), want)
		other := projection.NewMemory()
		catchUp(t, ctx, s, other, products.ListOfProductsKV(), head, projection.Options{BatchEvents: 1000})
		checkKV(t, products.MemoryScanner(other), want)
	})
	t.Run("pebble", func(t *testing.T) {
		dir := t.TempDir()
		target, err := projection.OpenPebble(dir)
		if err != nil {
			t.Fatal(err)
		}
		catchUp(t, ctx, s, target, products.ListOfProductsKV(), head, projection.Options{})
		checkKV(t, target, want)
		// What was committed is what a reopened target lists.
		if err := target.Close(); err != nil {
			t.Fatal(err)
		}
		if target, err = projection.OpenPebble(dir); err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		checkKV(t, target, want)
	})
}

// The same scenario through the embedded store, whose $all the
// projector reads from disk.
func TestListOfProductsEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*catchUpTimeout)
	defer cancel()
	s := teststores.Open(t, "embedded")
	head, want := shopScenario(t, ctx, s)
	target, err := projection.OpenPebble(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	catchUp(t, ctx, s, target, products.ListOfProductsKV(), head, projection.Options{BatchEvents: 7})
	checkKV(t, target, want)
}

// The PostgreSQL form: the target's schema for this test only (dropped
// afterwards), the read model in the projection's own schema.
func TestListOfProductsPostgres(t *testing.T) {
	schema := teststores.Schema(t) // skips without a server, unless CI=true
	ctx, cancel := context.WithTimeout(context.Background(), 2*catchUpTimeout)
	defer cancel()
	s := memory.New(memory.Options{})
	defer s.Close()
	head, want := shopScenario(t, ctx, s)

	pool, err := pgxpool.New(ctx, teststores.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after the model schema's cleanup below
	target, err := projection.NewPostgres(ctx, pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	dropModelSchemas(t, pool, target)
	catchUp(t, ctx, s, target, products.ListOfProductsPostgres(), head, projection.Options{BatchEvents: 5})

	got, err := products.ListProductsPostgres(ctx, target, 0)
	checkListing(t, "all", got, want, err)
	for _, v := range []string{"acme", "bolt", "crook", "nobody"} {
		got, err := products.VendorProductsPostgres(ctx, target, v, 0)
		checkListing(t, v, got, vendorRows(want, v), err)
	}
	got, err = products.ListProductsPostgres(ctx, target, 2)
	checkListing(t, "first two", got, want[:2], err)
}

// dropModelSchemas drops the projection's model schema when the test
// ends: it lives beside the target's schema, not in it. The cleanup
// runs before the target's schema is dropped (cleanups run last
// registered first), while the target can still name it.
func dropModelSchemas(t testing.TB, pool *pgxpool.Pool, target *projection.Postgres) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
		defer cancel()
		schema, err := target.ModelSchema(ctx, products.ListOfProductsName)
		if err == nil {
			_, err = pool.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
		}
		if err != nil {
			t.Errorf("dropping the model schema: %v", err)
		}
	})
}

// The read model in the in-memory target: a blocked vendor's products
// leave the listing at once, and one added in the instant of the block
// (the shop's check is not atomic with the product's append) never
// enters it.
func ExampleListOfProductsKV() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	shop := newShop(store)
	shop.Vendors.Handle(ctx, products.VendorStream("acme"), products.RegisterVendor{Name: "Acme"})
	shop.Vendors.Handle(ctx, products.VendorStream("crook"), products.RegisterVendor{Name: "Crook"})
	shop.AddProduct(ctx, "anvil", "acme", "Anvil", 5000)
	shop.AddProduct(ctx, "rocket", "acme", "Rocket", 9000)
	shop.AddProduct(ctx, "watch", "crook", "Fake watch", 2000)
	shop.Products.Handle(ctx, products.ProductStream("anvil"), products.RenameProduct{Title: "Big anvil"})
	shop.Vendors.Handle(ctx, products.VendorStream("crook"), products.BlockVendor{Reason: "counterfeits"})
	late, _ := products.Codec.Encode(products.ProductAdded{Vendor: "crook", Title: "Fake shoe", Price: 100})
	res, _ := store.Append(ctx, products.ProductStream("shoe"), annals.NoStream, late)

	target := projection.NewMemory()
	pr, err := projection.New(store, target, products.ListOfProductsKV(), projection.Options{})
	if err != nil {
		panic(err)
	}
	pr.Start(ctx)
	for pr.Position() < res.LastPosition {
		// A real reader queries whatever the lag; the example waits
		// to print a settled listing.
		time.Sleep(time.Millisecond)
	}
	pr.Stop()

	listing, err := products.ListProductsKV(products.MemoryScanner(target), 0)
	if err != nil {
		panic(err)
	}
	for _, p := range listing {
		fmt.Printf("%s %s: %s, %d cents\n", p.Vendor, p.Product, p.Title, p.Price)
	}
	crooks, _ := products.VendorProductsKV(products.MemoryScanner(target), "crook", 0)
	fmt.Println("crook lists", len(crooks))
	// Output:
	// acme anvil: Big anvil, 5000 cents
	// acme rocket: Rocket, 9000 cents
	// crook lists 0
}
