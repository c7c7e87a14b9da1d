package products

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/annals/annals"
	"github.com/annals/annals/projection"
	"github.com/jackc/pgx/v5"
)

// ListOfProductsName names the ListOfProducts read model in its target.
//
// ListOfProducts is the shop's read model of the products on sale: every
// product added, renamed and repriced, without the withdrawn ones and
// without any product of a blocked vendor. Product and vendor events feed
// it: ProductTitleRenamed and ProductPriceChanged touch one row,
// VendorBlocked removes every row of that vendor at once.
//
// Two forms, one per kind of target: ListOfProductsKV for the in-memory
// and embedded (pebble) targets, ListOfProductsPostgres for PostgreSQL.
// Both follow the same rules:
//
//   - A product is listed from its ProductAdded, unless its vendor is
//     blocked by then. AddProduct checks the vendor's stream before it
//     decides, but the product's append is guarded by the product's stream
//     only: a VendorBlocked may land between the check and the append, so
//     a ProductAdded may follow its vendor's VendorBlocked in $all. The
//     read model keeps a blocked flag per vendor for that reason.
//   - ProductTitleRenamed and ProductPriceChanged change the product's
//     row, if it is listed; ProductWithdrawn (or a tombstone of the
//     product's stream) removes it.
//   - VendorBlocked removes the vendor's rows and sets its flag; nothing
//     unblocks a vendor.
//
// Locks (what one event's change takes, and why it is enough):
//
// PostgreSQL: ProductTitleRenamed, ProductPriceChanged and
// ProductWithdrawn update or delete one row by its primary key
// (product_id): a row lock on that row only. VendorBlocked inserts the
// vendor's blocked_vendors row and deletes its products by vendor_id
// through the vendor_id index: row locks on that vendor's rows only
// (PostgreSQL takes no gap or predicate locks under read committed, so
// inserts of other vendors' products do not wait). ProductAdded inserts
// one row (locking it) and reads the vendor's blocked_vendors row without
// a lock. The locks last until the batch's transaction commits; queries
// never wait for them (MVCC readers see the last committed batch). The
// order of a VendorBlocked and a ProductAdded is not the locks' to keep:
// one writer per projection (the lease) applies events in $all order, so
// the ProductAdded's read of the flag sees the VendorBlocked before it, in
// the same transaction or a committed one.
//
// KV targets (in-memory, pebble): there are no row locks. A target runs
// one writer transaction at a time (Begin waits for the one in progress),
// so a projection's batch is applied alone: its reads see the committed
// model and its own writes, and nothing else writes meanwhile. The batch
// becomes visible at once on commit (pebble: one atomic batch; memory:
// under the target's lock), so a query sees a blocked vendor's products
// all there or all gone, never half.
const ListOfProductsName = "list-of-products"

// Limits of the read model's queries.
const (
	// MaxListed bounds the products one listing returns: a listing is
	// held in memory whole.
	MaxListed = 10_000
	// DefaultListed is the length of a listing when the caller gives no
	// limit.
	DefaultListed = 100
)

// ListedProduct is a row of the read model: a product on sale.
type ListedProduct struct {
	Product string `json:"product"`
	Vendor  string `json:"vendor"`
	Title   string `json:"title"`
	Price   int    `json:"price"`
}

// ListOfProductsFilter selects the events the read model reads: the
// vendors' and the products' streams, filtered in the store.
func ListOfProductsFilter() *annals.Filter {
	return annals.StreamPrefixFilter(vendorPrefix, productPrefix)
}

const (
	vendorPrefix  = "vendor-"
	productPrefix = "product-"
)

// ErrListOfProducts wraps the read model's refusals of an event it cannot
// apply (an id it cannot key, an event of a stream it does not know).
var ErrListOfProducts = errors.New("products: list of products")

// shopEvent is a decoded event of a vendor or a product stream, with the
// id its stream names. tombstone is set for the $streamDeleted record of
// a tombstoned stream (ev is nil then); an event to ignore has neither.
type shopEvent struct {
	vendor, product string
	ev              Event
	tombstone       bool
}

// decodeShop decodes e and the id of its stream.
func decodeShop(e annals.Event) (shopEvent, error) {
	var se shopEvent
	switch {
	case strings.HasPrefix(e.Stream, vendorPrefix):
		se.vendor = e.Stream[len(vendorPrefix):]
	case strings.HasPrefix(e.Stream, productPrefix):
		se.product = e.Stream[len(productPrefix):]
	default:
		return se, fmt.Errorf("%w: stream %q is neither a vendor's nor a product's", ErrListOfProducts, e.Stream)
	}
	if strings.HasPrefix(e.Type, "$") {
		// System records: a tombstone ends a product for good; others
		// (none reach here through the filter today) say nothing about
		// the shop.
		se.tombstone = e.Type == annals.EventTypeStreamDeleted
		return se, nil
	}
	ev, ok, err := Codec.Decode(e)
	if err != nil || !ok {
		return se, err
	}
	se.ev = ev
	if a, isAdd := ev.(ProductAdded); isAdd && se.product != "" {
		se.vendor = a.Vendor
	}
	// A NUL byte would end an id early in the KV keys. Stream names
	// cannot hold one, but ProductAdded.Vendor is the payload's word.
	if strings.IndexByte(se.vendor, 0) >= 0 || strings.IndexByte(se.product, 0) >= 0 {
		return se, fmt.Errorf("%w: an id holds a NUL byte at %q@%d", ErrListOfProducts, e.Stream, e.Revision)
	}
	return se, nil
}

// KV layout of the read model (in the projection's own key space):
//
//	v/<vendor> 0x00 <product>   the listed product's row, JSON (ListedProduct)
//	p/<product>                 the product's vendor, for the events of a
//	                            product that do not name it
//	b/<vendor>                  the vendor is blocked (empty value)
//
// Rows sit under their vendor so that VendorBlocked is one DeletePrefix
// of v/<vendor> 0x00 (KV has no scan inside a transaction). The
// separator is NUL rather than '/': ids hold no control character (stream
// names may not), so no vendor's prefix is a prefix of another's ("acme"
// and "acme/eu" would share "v/acme/"). A pointer stays after its vendor is
// blocked (it still says the product's vendor, and the row's absence says
// it is not listed); a withdrawal deletes both.
const (
	kvRowPrefix     = "v/"
	kvPointerPrefix = "p/"
	kvBlockedPrefix = "b/"
)

func kvVendorRows(vendor string) []byte {
	return append([]byte(kvRowPrefix+vendor), 0)
}

func kvRow(vendor, product string) []byte {
	return append(kvVendorRows(vendor), product...)
}

func kvPointer(product string) []byte { return []byte(kvPointerPrefix + product) }
func kvBlocked(vendor string) []byte  { return []byte(kvBlockedPrefix + vendor) }

// ListOfProductsKV is the read model for the in-memory and pebble
// targets (see ListOfProductsName for the rules and why the KV
// targets need no locks). Query it with ListProductsKV and
// VendorProductsKV.
func ListOfProductsKV() projection.Projection[projection.KV] {
	return projection.Projection[projection.KV]{
		Name:   ListOfProductsName,
		Filter: ListOfProductsFilter(),
		Handle: handleKV,
		Reset:  func(ctx context.Context, kv projection.KV) error { return kv.DeletePrefix(nil) },
	}
}

func handleKV(ctx context.Context, kv projection.KV, e annals.Event) error {
	se, err := decodeShop(e)
	if err != nil {
		return err
	}
	if se.tombstone {
		if se.product != "" {
			return withdrawKV(kv, se.product)
		}
		return nil
	}
	switch ev := se.ev.(type) {
	case VendorBlocked:
		// The flag first: a ProductAdded of this vendor later in $all
		// (the non-atomic check of AddProduct) finds it.
		if err := kv.Set(kvBlocked(se.vendor), nil); err != nil {
			return err
		}
		return kv.DeletePrefix(kvVendorRows(se.vendor))
	case ProductAdded:
		return addKV(kv, se.product, ev, e.Revision)
	case ProductTitleRenamed:
		return updateKV(kv, se.product, func(r *ListedProduct) { r.Title = ev.Title })
	case ProductPriceChanged:
		return updateKV(kv, se.product, func(r *ListedProduct) { r.Price = ev.Price })
	case ProductWithdrawn:
		return withdrawKV(kv, se.product)
	}
	// VendorRegistered: a vendor with no product lists nothing.
	return nil
}

func addKV(kv projection.KV, product string, ev ProductAdded, revision annals.Revision) error {
	// A product added again (its stream deleted and written anew: its
	// revisions go on) may name another vendor: its old row goes first.
	// At revision 0 the stream never had an event, so there is nothing
	// to look up: that saves a read that misses, the costliest kind in
	// pebble, on nearly every ProductAdded.
	if revision > 0 {
		if err := withdrawKV(kv, product); err != nil {
			return err
		}
	}
	if err := kv.Set(kvPointer(product), []byte(ev.Vendor)); err != nil {
		return err
	}
	_, blocked, err := kv.Get(kvBlocked(ev.Vendor))
	if err != nil || blocked {
		return err
	}
	row, err := json.Marshal(ListedProduct{Product: product, Vendor: ev.Vendor, Title: ev.Title, Price: ev.Price})
	if err != nil {
		return err
	}
	return kv.Set(kvRow(ev.Vendor, product), row)
}

// updateKV changes the product's row, if it is listed: a product of a
// blocked vendor has its pointer but no row.
func updateKV(kv projection.KV, product string, change func(*ListedProduct)) error {
	vendor, ok, err := kv.Get(kvPointer(product))
	if err != nil || !ok {
		return err
	}
	key := kvRow(string(vendor), product)
	v, ok, err := kv.Get(key)
	if err != nil || !ok {
		return err
	}
	var r ListedProduct
	if err := json.Unmarshal(v, &r); err != nil {
		return fmt.Errorf("%w: row of %s: %v", ErrListOfProducts, product, err)
	}
	change(&r)
	if v, err = json.Marshal(r); err != nil {
		return err
	}
	return kv.Set(key, v)
}

func withdrawKV(kv projection.KV, product string) error {
	vendor, ok, err := kv.Get(kvPointer(product))
	if err != nil || !ok {
		return err
	}
	if err := kv.Delete(kvRow(string(vendor), product)); err != nil {
		return err
	}
	return kv.Delete(kvPointer(product))
}

// KVScanner reads the committed read model of a KV target by key prefix:
// (*projection.Pebble) is one; MemoryScanner adapts (*projection.Memory).
type KVScanner interface {
	Scan(name string, prefix []byte, fn func(key, value []byte) bool) error
}

// MemoryScanner is the in-memory target as a KVScanner.
func MemoryScanner(m *projection.Memory) KVScanner { return memoryScanner{m} }

type memoryScanner struct{ m *projection.Memory }

func (s memoryScanner) Scan(name string, prefix []byte, fn func(key, value []byte) bool) error {
	s.m.Scan(name, prefix, fn)
	return nil
}

// ListProductsKV returns up to limit listed products (DefaultListed if
// limit is 0, at most MaxListed), by vendor then product id.
func ListProductsKV(s KVScanner, limit int) ([]ListedProduct, error) {
	return scanRows(s, []byte(kvRowPrefix), limit)
}

// VendorProductsKV returns up to limit listed products of vendor, by
// product id.
func VendorProductsKV(s KVScanner, vendor string, limit int) ([]ListedProduct, error) {
	return scanRows(s, kvVendorRows(vendor), limit)
}

func scanRows(s KVScanner, prefix []byte, limit int) ([]ListedProduct, error) {
	limit = clampListed(limit)
	var out []ListedProduct
	var bad error
	err := s.Scan(ListOfProductsName, prefix, func(key, value []byte) bool {
		var r ListedProduct
		if err := json.Unmarshal(value, &r); err != nil {
			bad = fmt.Errorf("%w: row %q: %v", ErrListOfProducts, key, err)
			return false
		}
		out = append(out, r)
		return len(out) < limit
	})
	return out, errors.Join(err, bad)
}

func clampListed(limit int) int {
	switch {
	case limit <= 0:
		return DefaultListed
	case limit > MaxListed:
		return MaxListed
	}
	return limit
}

// PostgreSQL schema of the read model. The target runs each transaction
// with search_path at the projection's own schema, so names are
// unqualified. Ids sort in byte order (COLLATE "C"), as in the KV form,
// and the vendor_id index is what lets VendorBlocked lock only its
// vendor's rows.
const listOfProductsDDL = `CREATE TABLE IF NOT EXISTS listed_products (
	product_id text COLLATE "C" PRIMARY KEY,
	vendor_id  text COLLATE "C" NOT NULL,
	title      text NOT NULL,
	price      bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS listed_products_vendor ON listed_products (vendor_id, product_id);
CREATE TABLE IF NOT EXISTS blocked_vendors (
	vendor_id text COLLATE "C" PRIMARY KEY
)`

// ListOfProductsPostgres is the read model for the PostgreSQL target:
// tables listed_products and blocked_vendors in the projection's schema
// (see ListOfProductsName for the rows each event locks).
// Query it with ListProductsPostgres and VendorProductsPostgres.
func ListOfProductsPostgres() projection.Projection[pgx.Tx] {
	return projection.Projection[pgx.Tx]{
		Name:   ListOfProductsName,
		Filter: ListOfProductsFilter(),
		Setup: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, listOfProductsDDL)
			return err
		},
		Handle:      handlePostgres,
		HandleBatch: handlePostgresBatch,
		Reset: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `TRUNCATE listed_products, blocked_vendors`)
			return err
		},
	}
}

// Each event is one statement; a batch of them goes in one round trip
// (HandleBatch).
const (
	// The insert reads the vendor's flag (no lock) and locks the new row.
	// A product added again (its stream deleted and written anew)
	// replaces its row, or loses it if its vendor is blocked by then:
	// the delete and the insert touch the row on exclusive conditions.
	sqlAddProduct = `WITH blocked AS (SELECT EXISTS (SELECT FROM blocked_vendors WHERE vendor_id = $2) AS yes),
gone AS (DELETE FROM listed_products WHERE product_id = $1 AND (SELECT yes FROM blocked))
INSERT INTO listed_products (product_id, vendor_id, title, price)
SELECT $1, $2, $3, $4 WHERE NOT (SELECT yes FROM blocked)
ON CONFLICT (product_id) DO UPDATE SET vendor_id = EXCLUDED.vendor_id, title = EXCLUDED.title, price = EXCLUDED.price`
	// Blocking deletes through the vendor_id index: row locks on the
	// vendor's rows only.
	sqlBlockVendor = `WITH flag AS (INSERT INTO blocked_vendors (vendor_id) VALUES ($1) ON CONFLICT DO NOTHING)
DELETE FROM listed_products WHERE vendor_id = $1`
	sqlRename   = `UPDATE listed_products SET title = $2 WHERE product_id = $1`
	sqlReprice  = `UPDATE listed_products SET price = $2 WHERE product_id = $1`
	sqlWithdraw = `DELETE FROM listed_products WHERE product_id = $1`
)

func handlePostgres(ctx context.Context, tx pgx.Tx, e annals.Event) error {
	sql, args, err := statementOf(e)
	if err != nil || sql == "" {
		return err
	}
	_, err = tx.Exec(ctx, sql, args...)
	return err
}

// handlePostgresBatch sends the events' statements in one round trip (a
// pgx batch, pipelined): a rebuild is bound by round trips otherwise.
func handlePostgresBatch(ctx context.Context, tx pgx.Tx, events []annals.Event) error {
	b := &pgx.Batch{}
	for _, e := range events {
		sql, args, err := statementOf(e)
		if err != nil {
			return err
		}
		if sql != "" {
			b.Queue(sql, args...)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// statementOf is the statement that applies e ("" for none).
func statementOf(e annals.Event) (string, []any, error) {
	se, err := decodeShop(e)
	if err != nil {
		return "", nil, err
	}
	if se.tombstone {
		if se.product != "" {
			return sqlWithdraw, []any{se.product}, nil
		}
		return "", nil, nil
	}
	switch ev := se.ev.(type) {
	case VendorBlocked:
		return sqlBlockVendor, []any{se.vendor}, nil
	case ProductAdded:
		return sqlAddProduct, []any{se.product, ev.Vendor, ev.Title, ev.Price}, nil
	case ProductTitleRenamed:
		return sqlRename, []any{se.product, ev.Title}, nil
	case ProductPriceChanged:
		return sqlReprice, []any{se.product, ev.Price}, nil
	case ProductWithdrawn:
		return sqlWithdraw, []any{se.product}, nil
	}
	return "", nil, nil
}

// ListProductsPostgres returns up to limit listed products (DefaultListed
// if limit is 0, at most MaxListed), by vendor then product id, from the
// active read model.
func ListProductsPostgres(ctx context.Context, t *projection.Postgres, limit int) ([]ListedProduct, error) {
	return queryRows(ctx, t, `SELECT product_id, vendor_id, title, price FROM listed_products
ORDER BY vendor_id, product_id LIMIT $1`, clampListed(limit))
}

// VendorProductsPostgres returns up to limit listed products of vendor,
// by product id.
func VendorProductsPostgres(ctx context.Context, t *projection.Postgres, vendor string, limit int) ([]ListedProduct, error) {
	return queryRows(ctx, t, `SELECT product_id, vendor_id, title, price FROM listed_products
WHERE vendor_id = $2 ORDER BY product_id LIMIT $1`, clampListed(limit), vendor)
}

func queryRows(ctx context.Context, t *projection.Postgres, sql string, args ...any) ([]ListedProduct, error) {
	var out []ListedProduct
	err := t.Query(ctx, ListOfProductsName, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ListedProduct, error) {
			var r ListedProduct
			err := row.Scan(&r.Product, &r.Vendor, &r.Title, &r.Price)
			return r, err
		})
		return err
	})
	return out, err
}
