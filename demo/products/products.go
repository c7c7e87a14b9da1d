// Package products is the write side of the mission's shop: vendors and
// their products, two kinds of aggregate, one stream each ("vendor-<id>",
// "product-<id>"). The ListOfProducts read model, which projects both,
// comes with projections; here each command is decided on its own stream.
//
// One rule spans the two: a blocked vendor cannot list new products.
// AddProduct checks it on the vendor's stream read straight from the store
// (not from a read model) just before deciding; the product's append is
// still only guarded by the product's revision, so a vendor blocked in the
// instant between the two may get one more product. Rules that must hold
// exactly belong inside one stream; VendorBlocked is the event that lets
// the read side hide the vendor's products.
package products

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals/codec"
	"github.com/annals/annals/command"
)

// Limits.
const (
	MaxNameBytes = 200
	MaxPrice     = 1_000_000_00 // in cents
)

var (
	ErrVendorExists     = errors.New("products: the vendor is registered")
	ErrNoVendor         = errors.New("products: no such vendor")
	ErrVendorBlocked    = errors.New("products: the vendor is blocked")
	ErrProductExists    = errors.New("products: the product exists")
	ErrNoProduct        = errors.New("products: no such product")
	ErrName             = fmt.Errorf("products: a name has 1 to %d bytes", MaxNameBytes)
	ErrPrice            = fmt.Errorf("products: a price is 1 to %d cents", MaxPrice)
	ErrProductWithdrawn = errors.New("products: the product is withdrawn")
)

// Event is an event of a vendor or of a product.
type Event interface{ isEvent() }

type VendorRegistered struct {
	Name string `json:"name"`
}

// VendorBlocked affects every product of the vendor (in the read model).
type VendorBlocked struct {
	Reason string `json:"reason"`
}

type ProductAdded struct {
	Vendor string `json:"vendor"`
	Title  string `json:"title"`
	Price  int    `json:"price"`
}

// ProductTitleRenamed affects one product.
type ProductTitleRenamed struct {
	Title string `json:"title"`
}

type ProductPriceChanged struct {
	Price int `json:"price"`
}

type ProductWithdrawn struct{}

func (VendorRegistered) isEvent()    {}
func (VendorBlocked) isEvent()       {}
func (ProductAdded) isEvent()        {}
func (ProductTitleRenamed) isEvent() {}
func (ProductPriceChanged) isEvent() {}
func (ProductWithdrawn) isEvent()    {}

// Codec names the shop's events in the store.
var Codec = codec.New[Event](codec.Options{})

func init() {
	codec.MustRegister[VendorRegistered](Codec, "VendorRegistered")
	codec.MustRegister[VendorBlocked](Codec, "VendorBlocked")
	codec.MustRegister[ProductAdded](Codec, "ProductAdded")
	codec.MustRegister[ProductTitleRenamed](Codec, "ProductTitleRenamed")
	codec.MustRegister[ProductPriceChanged](Codec, "ProductPriceChanged")
	codec.MustRegister[ProductWithdrawn](Codec, "ProductWithdrawn")
}

// VendorStream and ProductStream name the streams.
func VendorStream(id string) string  { return "vendor-" + id }
func ProductStream(id string) string { return "product-" + id }

// Vendor is a vendor as decisions see it.
type Vendor struct {
	Registered, Blocked bool
	Name                string
}

// VendorCommand is a command to a vendor.
type VendorCommand interface{ isVendorCommand() }

type (
	RegisterVendor struct{ Name string }
	BlockVendor    struct{ Reason string }
)

func (RegisterVendor) isVendorCommand() {}
func (BlockVendor) isVendorCommand()    {}

// Vendors is the vendor's domain logic.
var Vendors = command.Decider[Vendor, VendorCommand, Event]{
	Initial: func() Vendor { return Vendor{} },
	Evolve: func(v Vendor, e Event) Vendor {
		switch e := e.(type) {
		case VendorRegistered:
			v.Registered, v.Name = true, e.Name
		case VendorBlocked:
			v.Blocked = true
		}
		return v
	},
	Decide: func(v Vendor, c VendorCommand) ([]Event, error) {
		switch c := c.(type) {
		case RegisterVendor:
			if v.Registered {
				return nil, ErrVendorExists
			}
			if c.Name == "" || len(c.Name) > MaxNameBytes {
				return nil, ErrName
			}
			return []Event{VendorRegistered{Name: c.Name}}, nil
		case BlockVendor:
			if !v.Registered {
				return nil, ErrNoVendor
			}
			if v.Blocked {
				return nil, nil
			}
			return []Event{VendorBlocked{Reason: c.Reason}}, nil
		}
		return nil, fmt.Errorf("products: unknown command %T", c)
	},
}

// Product is a product as decisions see it.
type Product struct {
	Exists, Withdrawn bool
	Vendor, Title     string
	Price             int
}

// ProductCommand is a command to a product.
type ProductCommand interface{ isProductCommand() }

type (
	// AddProduct lists a product. Vendor is the vendor's state, which
	// Shop.AddProduct loads from the vendor's stream.
	AddProduct struct {
		VendorID string
		Vendor   Vendor
		Title    string
		Price    int
	}
	RenameProduct   struct{ Title string }
	ChangePrice     struct{ Price int }
	WithdrawProduct struct{}
)

func (AddProduct) isProductCommand()      {}
func (RenameProduct) isProductCommand()   {}
func (ChangePrice) isProductCommand()     {}
func (WithdrawProduct) isProductCommand() {}

// Products is the product's domain logic.
var Products = command.Decider[Product, ProductCommand, Event]{
	Initial: func() Product { return Product{} },
	Evolve: func(p Product, e Event) Product {
		switch e := e.(type) {
		case ProductAdded:
			p.Exists, p.Vendor, p.Title, p.Price = true, e.Vendor, e.Title, e.Price
		case ProductTitleRenamed:
			p.Title = e.Title
		case ProductPriceChanged:
			p.Price = e.Price
		case ProductWithdrawn:
			p.Withdrawn = true
		}
		return p
	},
	Decide: func(p Product, c ProductCommand) ([]Event, error) {
		if _, adding := c.(AddProduct); !adding {
			if !p.Exists {
				return nil, ErrNoProduct
			}
			if p.Withdrawn {
				return nil, ErrProductWithdrawn
			}
		}
		switch c := c.(type) {
		case AddProduct:
			switch {
			case p.Exists:
				return nil, ErrProductExists
			case !c.Vendor.Registered:
				return nil, ErrNoVendor
			case c.Vendor.Blocked:
				return nil, ErrVendorBlocked
			case c.Title == "" || len(c.Title) > MaxNameBytes:
				return nil, ErrName
			case c.Price < 1 || c.Price > MaxPrice:
				return nil, ErrPrice
			}
			return []Event{ProductAdded{Vendor: c.VendorID, Title: c.Title, Price: c.Price}}, nil
		case RenameProduct:
			if c.Title == "" || len(c.Title) > MaxNameBytes {
				return nil, ErrName
			}
			if c.Title == p.Title {
				return nil, nil
			}
			return []Event{ProductTitleRenamed{Title: c.Title}}, nil
		case ChangePrice:
			if c.Price < 1 || c.Price > MaxPrice {
				return nil, ErrPrice
			}
			if c.Price == p.Price {
				return nil, nil
			}
			return []Event{ProductPriceChanged{Price: c.Price}}, nil
		case WithdrawProduct:
			return []Event{ProductWithdrawn{}}, nil
		}
		return nil, fmt.Errorf("products: unknown command %T", c)
	},
}

// Shop handles the commands of vendors and products on one store.
type Shop struct {
	Vendors  *command.Handler[Vendor, VendorCommand, Event]
	Products *command.Handler[Product, ProductCommand, Event]
}

// AddProduct lists product for vendor: it loads the vendor from its stream
// and decides on the product's stream.
func (s *Shop) AddProduct(ctx context.Context, product, vendor, title string, price int, opts ...command.Option) (command.Result[Product, Event], error) {
	v, _, err := s.Vendors.Load(ctx, VendorStream(vendor))
	if err != nil {
		return command.Result[Product, Event]{}, err
	}
	return s.Products.Handle(ctx, ProductStream(product), AddProduct{VendorID: vendor, Vendor: v, Title: title, Price: price}, opts...)
}
