package codec_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/annals/annals"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/memory"
)

type event interface{ isEvent() }

type itemAdded struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type cartCleared struct{}

func (itemAdded) isEvent()   {}
func (cartCleared) isEvent() {}

func registry(t *testing.T, opts codec.Options) *codec.Registry[event] {
	t.Helper()
	r := codec.New[event](opts)
	if err := codec.Register[itemAdded](r, "ItemAdded"); err != nil {
		t.Fatal(err)
	}
	if err := codec.Register[cartCleared](r, "CartCleared"); err != nil {
		t.Fatal(err)
	}
	return r
}

// roundTrip appends ev encoded by w to a real store and decodes what was
// recorded with r.
func roundTrip(t *testing.T, w *codec.Registry[event], ev event, r *codec.Registry[event]) (event, bool, error) {
	t.Helper()
	data, err := w.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return decodeStored(t, data, r)
}

func decodeStored(t *testing.T, data annals.EventData, r *codec.Registry[event]) (event, bool, error) {
	t.Helper()
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()
	if _, err := s.Append(ctx, "cart-1", annals.Any, data); err != nil {
		t.Fatal(err)
	}
	for rec, err := range s.ReadStream(ctx, "cart-1", annals.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		return r.Decode(rec)
	}
	t.Fatal("nothing recorded")
	return nil, false, nil
}

func TestRoundTrip(t *testing.T) {
	r := registry(t, codec.Options{})
	for _, ev := range []event{itemAdded{SKU: "tea", Quantity: 2}, cartCleared{}} {
		got, ok, err := roundTrip(t, r, ev, r)
		if err != nil || !ok || !reflect.DeepEqual(got, ev) {
			t.Fatalf("%#v came back as %#v (ok %v, err %v)", ev, got, ok, err)
		}
	}
	data, _ := r.Encode(itemAdded{SKU: "tea"})
	if data.Type != "ItemAdded" || data.ContentType != annals.ContentTypeJSON || string(data.Metadata) != `{"schemaVersion":1}` {
		t.Fatalf("encoded %+v", data)
	}
	if name, err := r.Name(cartCleared{}); err != nil || name != "CartCleared" {
		t.Fatalf("Name: %q %v", name, err)
	}
}

// itemAddedV1 is how ItemAdded was written by version 1 of the program:
// one item at a time, under the name "ProductAdded".
type itemAddedV1 struct {
	Product string `json:"product"`
}

func (itemAddedV1) isEvent() {}

// An event written by an old version of its type loads as today's type:
// renamed (alias), then upcast from version 1 (product, no quantity) to 2
// (sku, quantity) to 3 (quantity at least 1, kept).
func TestUpcast(t *testing.T) {
	old := codec.New[event](codec.Options{})
	codec.MustRegister[itemAddedV1](old, "ProductAdded")
	v1, err := old.Encode(itemAddedV1{Product: "tea"})
	if err != nil {
		t.Fatal(err)
	}

	var calls []int
	r := codec.New[event](codec.Options{})
	err = codec.Register[itemAdded](r, "ItemAdded",
		codec.Version(3),
		codec.Alias("ProductAdded"),
		codec.Upcast(1, func(data []byte) ([]byte, error) {
			calls = append(calls, 1)
			var v1 struct{ Product string }
			if err := json.Unmarshal(data, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{"sku": v1.Product})
		}),
		codec.Upcast(2, func(data []byte) ([]byte, error) {
			calls = append(calls, 2)
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			if _, ok := m["quantity"]; !ok {
				m["quantity"] = 1
			}
			return json.Marshal(m)
		}))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := decodeStored(t, v1, r)
	if err != nil || !ok || got != (itemAdded{SKU: "tea", Quantity: 1}) || !reflect.DeepEqual(calls, []int{1, 2}) {
		t.Fatalf("version 1 loaded as %#v (ok %v, err %v), upcasters %v", got, ok, err, calls)
	}

	// Today's events are written at version 3 and need no upcasting.
	calls = nil
	got, _, err = roundTrip(t, r, itemAdded{SKU: "tea", Quantity: 5}, r)
	if err != nil || got != (itemAdded{SKU: "tea", Quantity: 5}) || len(calls) != 0 {
		t.Fatalf("version 3: %#v %v, upcasters %v", got, err, calls)
	}

	// An event without metadata is version 1.
	calls = nil
	got, _, err = decodeStored(t, annals.EventData{Type: "ItemAdded", Data: []byte(`{"product":"jam"}`)}, r)
	if err != nil || got != (itemAdded{SKU: "jam", Quantity: 1}) {
		t.Fatalf("without metadata: %#v %v", got, err)
	}

	// An event from the future: a clear error, not a guess.
	_, _, err = decodeStored(t, annals.EventData{Type: "ItemAdded", Data: []byte(`{}`), Metadata: []byte(`{"schemaVersion":4}`)}, r)
	if !errors.Is(err, codec.ErrFutureVersion) {
		t.Fatalf("version 4 of a version 3 type: %v, want ErrFutureVersion", err)
	}

	// A failing upcaster says which event and version.
	bad := codec.New[event](codec.Options{})
	codec.MustRegister[itemAdded](bad, "ItemAdded", codec.Version(2),
		codec.Upcast(1, func([]byte) ([]byte, error) { return nil, errors.New("no") }))
	if _, _, err = decodeStored(t, v1withType("ItemAdded"), bad); err == nil || !strings.Contains(err.Error(), "from version 1") {
		t.Fatalf("failing upcaster: %v", err)
	}
}

func v1withType(typ string) annals.EventData {
	return annals.EventData{Type: typ, Data: []byte(`{"product":"tea"}`)}
}

func TestUnknownType(t *testing.T) {
	r := registry(t, codec.Options{})
	_, ok, err := decodeStored(t, annals.EventData{Type: "CouponApplied", Data: []byte(`{}`)}, r)
	var unknown *codec.UnknownTypeError
	if ok || !errors.As(err, &unknown) || !errors.Is(err, codec.ErrUnknownType) || unknown.Type != "CouponApplied" || unknown.Stream != "cart-1" {
		t.Fatalf("unknown type: ok %v, err %v", ok, err)
	}
	skip := registry(t, codec.Options{SkipUnknown: true})
	if _, ok, err := decodeStored(t, annals.EventData{Type: "CouponApplied", Data: []byte(`{}`)}, skip); ok || err != nil {
		t.Fatalf("skipping unknown types: ok %v, err %v", ok, err)
	}
	// Known types still decode, and bad JSON is an error, not a skip.
	if _, ok, err := decodeStored(t, annals.EventData{Type: "ItemAdded", Data: []byte(`{"sku":`)}, skip); ok || err == nil {
		t.Fatalf("bad JSON: ok %v, err %v", ok, err)
	}
}

type notAnEvent struct{}

func TestRegisterErrors(t *testing.T) {
	r := registry(t, codec.Options{})
	cases := map[string]error{
		"same name":          codec.Register[itemAddedV1](r, "ItemAdded"),
		"same type":          codec.Register[itemAdded](r, "Other"),
		"not an event":       codec.Register[notAnEvent](r, "NotAnEvent"),
		"interface":          codec.Register[event](r, "Event"),
		"empty name":         codec.Register[itemAddedV1](r, ""),
		"missing upcaster":   codec.Register[itemAddedV1](r, "V", codec.Version(3), codec.Upcast(1, func(b []byte) ([]byte, error) { return b, nil })),
		"upcaster too far":   codec.Register[itemAddedV1](r, "V", codec.Upcast(1, func(b []byte) ([]byte, error) { return b, nil })),
		"version 0":          codec.Register[itemAddedV1](r, "V", codec.Version(0)),
		"alias taken":        codec.Register[itemAddedV1](r, "V", codec.Alias("CartCleared")),
		"version over limit": codec.Register[itemAddedV1](r, "V", codec.Version(codec.MaxVersion+1)),
	}
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	if _, err := r.Encode(itemAddedV1{}); !errors.Is(err, codec.ErrNotRegistered) {
		t.Fatalf("encoding an unregistered type: %v", err)
	}
}
