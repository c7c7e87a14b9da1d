package products_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/annals/annals/command"
	"github.com/annals/annals/command/commandtest"
	"github.com/annals/annals/demo/products"
	"github.com/annals/annals/internal/teststores"
)

var (
	acme    = products.Vendor{Registered: true, Name: "Acme"}
	blocked = products.Vendor{Registered: true, Blocked: true, Name: "Acme"}
	anvil   = products.ProductAdded{Vendor: "acme", Title: "Anvil", Price: 5000}
)

func TestVendors(t *testing.T) {
	commandtest.For(t, products.Vendors).Given().When(products.RegisterVendor{Name: "Acme"}).Then(products.VendorRegistered{Name: "Acme"})
	commandtest.For(t, products.Vendors).Given(products.VendorRegistered{Name: "Acme"}).When(products.RegisterVendor{Name: "Acme"}).
		ThenError(products.ErrVendorExists)
	commandtest.For(t, products.Vendors).Given().When(products.BlockVendor{Reason: "fraud"}).ThenError(products.ErrNoVendor)
	commandtest.For(t, products.Vendors).Given(products.VendorRegistered{Name: "Acme"}).When(products.BlockVendor{Reason: "fraud"}).
		Then(products.VendorBlocked{Reason: "fraud"})
	commandtest.For(t, products.Vendors).Given(products.VendorRegistered{Name: "Acme"}, products.VendorBlocked{}).
		When(products.BlockVendor{Reason: "again"}).Then()
}

func TestProducts(t *testing.T) {
	add := products.AddProduct{VendorID: "acme", Vendor: acme, Title: "Anvil", Price: 5000}
	commandtest.For(t, products.Products).Given().When(add).Then(anvil)
	commandtest.For(t, products.Products).Given(anvil).When(add).ThenError(products.ErrProductExists)
	blockedAdd := add
	blockedAdd.Vendor = blocked
	commandtest.For(t, products.Products).Given().When(blockedAdd).ThenError(products.ErrVendorBlocked)
	noVendor := add
	noVendor.Vendor = products.Vendor{}
	commandtest.For(t, products.Products).Given().When(noVendor).ThenError(products.ErrNoVendor)
	free := add
	free.Price = 0
	commandtest.For(t, products.Products).Given().When(free).ThenError(products.ErrPrice)

	commandtest.For(t, products.Products).Given(anvil).When(products.RenameProduct{Title: "Big anvil"}).
		Then(products.ProductTitleRenamed{Title: "Big anvil"})
	commandtest.For(t, products.Products).Given(anvil).When(products.RenameProduct{Title: "Anvil"}).Then()
	commandtest.For(t, products.Products).Given().When(products.RenameProduct{Title: "Anvil"}).ThenError(products.ErrNoProduct)
	commandtest.For(t, products.Products).Given(anvil).When(products.ChangePrice{Price: 4500}).
		Then(products.ProductPriceChanged{Price: 4500})
	commandtest.For(t, products.Products).Given(anvil, products.ProductWithdrawn{}).When(products.ChangePrice{Price: 1}).
		ThenError(products.ErrProductWithdrawn)
}

// The shop on a real store: a vendor lists products until it is blocked;
// after that the vendor's stream, read from the store, refuses more.
func TestShop(t *testing.T) {
	for _, kind := range []string{"memory", "embedded"} {
		t.Run(kind, func(t *testing.T) {
			s := teststores.Open(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard
			defer cancel()
			shop := &products.Shop{
				Vendors:  &command.Handler[products.Vendor, products.VendorCommand, products.Event]{Store: s, Decider: products.Vendors, Codec: products.Codec},
				Products: &command.Handler[products.Product, products.ProductCommand, products.Event]{Store: s, Decider: products.Products, Codec: products.Codec},
			}
			if _, err := shop.AddProduct(ctx, "p1", "acme", "Anvil", 5000); !errors.Is(err, products.ErrNoVendor) {
				t.Fatalf("a product of an unregistered vendor: %v", err)
			}
			if _, err := shop.Vendors.Handle(ctx, products.VendorStream("acme"), products.RegisterVendor{Name: "Acme"}); err != nil {
				t.Fatal(err)
			}
			res, err := shop.AddProduct(ctx, "p1", "acme", "Anvil", 5000)
			if err != nil || res.State.Vendor != "acme" || res.State.Price != 5000 {
				t.Fatalf("%+v %v", res, err)
			}
			if _, err := shop.Products.Handle(ctx, products.ProductStream("p1"), products.ChangePrice{Price: 4000}); err != nil {
				t.Fatal(err)
			}
			if _, err := shop.Vendors.Handle(ctx, products.VendorStream("acme"), products.BlockVendor{Reason: "fraud"}); err != nil {
				t.Fatal(err)
			}
			if _, err := shop.AddProduct(ctx, "p2", "acme", "Rocket", 9000); !errors.Is(err, products.ErrVendorBlocked) {
				t.Fatalf("a product of a blocked vendor: %v", err)
			}
			p, rev, err := shop.Products.Load(ctx, products.ProductStream("p1"))
			if err != nil || p.Price != 4000 || !p.Exists || rev.String() != "1" {
				t.Fatalf("p1: %+v %v %v", p, rev, err)
			}
		})
	}
}
