package storetest

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"

	"github.com/annals/annals"
)

func exerciseBadInput(t *testing.T, newStore func(t *testing.T) annals.Store) {
	type badCase struct {
		name string
		call func(ctx context.Context, s annals.Store) error
	}
	appendTo := func(stream string, events ...annals.EventData) func(context.Context, annals.Store) error {
		return func(ctx context.Context, s annals.Store) error {
			_, err := s.Append(ctx, stream, annals.Any, events...)
			return err
		}
	}
	appendEvents := func(events ...annals.EventData) func(context.Context, annals.Store) error {
		return appendTo("good-1", events...)
	}
	sized := func(size int) annals.EventData {
		e := ev("Sized")
		e.Data = make([]byte, size-len(e.Type))
		return e
	}
	cases := []badCase{
		{"EmptyStreamName", appendTo("", ev("A"))},
		{"StreamNameTooLong", appendTo(strings.Repeat("n", annals.DefaultMaxStreamNameBytes+1), ev("A"))},
		{"StreamNameInvalidUTF8", appendTo("bad-\xff\xfe", ev("A"))},
		{"StreamNameNewline", appendTo("bad\nname", ev("A"))},
		{"StreamNameNUL", appendTo("bad\x00name", ev("A"))},
		{"StreamNameDEL", appendTo("bad\x7fname", ev("A"))},
		{"StreamNameRightToLeftOverride", appendTo("order-\u202Efdp.exe", ev("A"))},
		{"StreamNameC1Control", appendTo("bad\u0085name", ev("A"))},
		{"StreamNameZeroWidthSpace", appendTo("order\u200B-1", ev("A"))},
		{"StreamNameIsolate", appendTo("order-\u2067x", ev("A"))},
		{"StreamNameLineSeparator", appendTo("order-\u2028x", ev("A"))},
		{"StreamNameByteOrderMark", appendTo("\uFEFForder-1", ev("A"))},
		{"EventTypeRightToLeftOverride", appendEvents(ev("Order\u202EdecalP"))},
		{"EventTypeWordJoiner", appendEvents(ev("Order\u2060Placed"))},
		{"DeleteDisguisedName", func(ctx context.Context, s annals.Store) error {
			_, err := s.Delete(ctx, "order-\u202Efdp.exe", annals.Any)
			return err
		}},
		{"SetMetadataDisguisedName", func(ctx context.Context, s annals.Store) error {
			_, err := s.SetStreamMetadata(ctx, "order-\u200Dx", annals.Any, annals.StreamMetadata{MaxCount: 1})
			return err
		}},
		{"SystemStream", appendTo("$system", ev("A"))},
		{"Metastream", appendTo(annals.MetastreamOf("good-1"), annals.EventData{Type: annals.EventTypeMetadata, Data: []byte(`{}`)})},
		{"AllStream", appendTo(annals.AllStream, ev("A"))},
		{"SystemEventType", appendEvents(ev("$custom"))},
		{"MetadataEventType", appendEvents(annals.EventData{Type: annals.EventTypeMetadata, Data: []byte(`{}`)})},
		{"EmptyEventType", appendEvents(ev("Fine"), annals.EventData{Data: []byte(`{}`)})},
		{"EventTypeTooLong", appendEvents(ev(strings.Repeat("T", annals.DefaultMaxEventTypeBytes+1)))},
		{"EventTypeControlChar", appendEvents(ev("Bad\tType"))},
		{"EventTypeInvalidUTF8", appendEvents(ev("Bad\xc3"))},
		{"EventTooLarge", appendEvents(ev("Fine"), sized(annals.DefaultMaxEventSizeBytes+1))},
		{"EventWithLargeMetadata", appendEvents(annals.EventData{Type: "Meta", Metadata: make([]byte, annals.DefaultMaxEventSizeBytes)})},
		{"TooManyEvents", appendEvents(evs(annals.DefaultMaxAppendEvents+1, "Many")...)},
		{"AppendTooLarge", func(ctx context.Context, s annals.Store) error {
			// Every event within its limit; together over the append limit.
			n := annals.DefaultMaxAppendSizeBytes/annals.DefaultMaxEventSizeBytes + 1
			data := make([]byte, annals.DefaultMaxEventSizeBytes-64)
			in := make([]annals.EventData, n)
			for i := range in {
				in[i] = ev("Big")
				in[i].Data = data
			}
			return appendEvents(in...)(ctx, s)
		}},
		{"DuplicateIDsInAppend", func(ctx context.Context, s annals.Store) error {
			e := ev("Twice")
			return appendEvents(e, e)(ctx, s)
		}},
		{"DeleteEmptyName", func(ctx context.Context, s annals.Store) error {
			_, err := s.Delete(ctx, "", annals.Any)
			return err
		}},
		{"DeleteAllStream", func(ctx context.Context, s annals.Store) error {
			_, err := s.Delete(ctx, annals.AllStream, annals.Any)
			return err
		}},
		{"TombstoneInvalidName", func(ctx context.Context, s annals.Store) error {
			_, err := s.Tombstone(ctx, "bad\x01", annals.Any)
			return err
		}},
		{"TombstoneSystemStream", func(ctx context.Context, s annals.Store) error {
			_, err := s.Tombstone(ctx, "$system", annals.Any)
			return err
		}},
		{"SetMetadataEmptyName", func(ctx context.Context, s annals.Store) error {
			_, err := s.SetStreamMetadata(ctx, "", annals.Any, annals.StreamMetadata{MaxCount: 1})
			return err
		}},
		{"SetMetadataNameTooLong", func(ctx context.Context, s annals.Store) error {
			_, err := s.SetStreamMetadata(ctx, strings.Repeat("n", annals.DefaultMaxStreamNameBytes+1), annals.Any, annals.StreamMetadata{MaxCount: 1})
			return err
		}},
		{"StreamMetadataEmptyName", func(ctx context.Context, s annals.Store) error {
			_, _, err := s.StreamMetadata(ctx, "")
			return err
		}},
		{"ReadStreamEmptyName", func(ctx context.Context, s annals.Store) error {
			_, err := readStream(ctx, s, "", annals.ReadStreamOptions{})
			return err
		}},
		{"ReadStreamInvalidName", func(ctx context.Context, s annals.Store) error {
			_, err := readStream(ctx, s, "bad\xff", annals.ReadStreamOptions{})
			return err
		}},
		{"ReadAllEmptyFilter", func(ctx context.Context, s annals.Store) error {
			_, err := collect(s.ReadAll(ctx, annals.ReadAllOptions{Filter: &annals.Filter{}}))
			return err
		}},
		{"ReadAllFilterWithoutPrefixes", func(ctx context.Context, s annals.Store) error {
			_, err := collect(s.ReadAll(ctx, annals.ReadAllOptions{Filter: annals.StreamPrefixFilter()}))
			return err
		}},
		{"SubscribeToAllEmptyFilter", func(ctx context.Context, s annals.Store) error {
			return firstErr(s.SubscribeToAll(ctx, annals.SubscribeAllOptions{Filter: &annals.Filter{}}))
		}},
		{"SubscribeToStreamEmptyName", func(ctx context.Context, s annals.Store) error {
			return firstErr(s.SubscribeToStream(ctx, "", annals.SubscribeStreamOptions{}))
		}},
	}
	var tests []storeTest
	for _, c := range cases {
		tests = append(tests, storeTest{c.name, func(t *testing.T, s annals.Store) {
			skipIfLimited(t, systemStreamCases[c.name] && limitationsOf(s).SystemStreamsWritable, "SystemStreamsWritable")
			ctx := testContext(t)
			mustAppend(t, ctx, s, "good-1", annals.NoStream, evs(2, "Good")...)
			err := c.call(ctx, s)
			if !errors.Is(err, annals.ErrInvalidInput) {
				t.Fatalf("error %v, want ErrInvalidInput", err)
			}
			var inv *annals.InvalidInputError
			if errors.As(err, &inv) && inv.Field == "" {
				t.Fatalf("InvalidInputError %v does not say which field is wrong", err)
			}
			unchanged(t, s, 2)
			wantRevisions(t, "good-1", mustReadStream(t, ctx, s, "good-1", annals.ReadStreamOptions{}), seq(0, 1))
		}})
	}
	tests = append(tests,
		storeTest{"LimitsAtBoundaryAccepted", testLimitsAtBoundary},
		storeTest{"ClosedStore", testClosedStore},
	)
	runAll(t, newStore, tests)
}

// firstErr runs a subscription until its first error or its first event or
// caught-up message (then nil).
func firstErr(seq iter.Seq2[annals.Message, error]) error {
	for _, err := range seq {
		return err
	}
	return errors.New("subscription ended without a message or an error")
}

func testLimitsAtBoundary(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	name := strings.Repeat("n", annals.DefaultMaxStreamNameBytes)
	mustAppend(t, ctx, s, name, annals.NoStream, ev(strings.Repeat("T", annals.DefaultMaxEventTypeBytes)))
	if got := mustReadStream(t, ctx, s, name, annals.ReadStreamOptions{}); len(got) != 1 || got[0].Stream != name {
		t.Fatalf("stream with a name of the maximum length: read %d events", len(got))
	}
	if _, err := s.SetStreamMetadata(ctx, name, annals.NoStream, annals.StreamMetadata{MaxCount: 5}); err != nil {
		t.Fatalf("SetStreamMetadata on a name of the maximum length: %v", err)
	}
	if _, err := s.Delete(ctx, name, annals.Exact(0)); err != nil {
		t.Fatalf("Delete of a name of the maximum length: %v", err)
	}

	// An event of exactly the maximum size (type + data + metadata).
	e := ev("Max")
	e.Metadata = []byte(`{"m":1}`)
	e.Data = make([]byte, annals.DefaultMaxEventSizeBytes-len(e.Type)-len(e.Metadata))
	if annals.EventSizeBytes(&e) != annals.DefaultMaxEventSizeBytes {
		t.Fatalf("bad test: event is %d bytes", annals.EventSizeBytes(&e))
	}
	mustAppend(t, ctx, s, "max-size", annals.NoStream, e)
	got := mustReadStream(t, ctx, s, "max-size", annals.ReadStreamOptions{})
	if len(got) != 1 || len(got[0].Data) != len(e.Data) || string(got[0].Metadata) != string(e.Metadata) {
		t.Fatalf("event of the maximum size did not round-trip")
	}

	// Exactly the maximum number of events in one append.
	res := mustAppend(t, ctx, s, "max-count", annals.NoStream, evs(annals.DefaultMaxAppendEvents, "Many")...)
	if res.NextExpected != annals.Exact(annals.DefaultMaxAppendEvents-1) ||
		res.LastPosition-res.FirstPosition+1 != annals.DefaultMaxAppendEvents {
		t.Fatalf("append of the maximum number of events: result %+v", res)
	}

	// Exactly the maximum append size.
	n := annals.DefaultMaxAppendSizeBytes / annals.DefaultMaxEventSizeBytes
	if n*annals.DefaultMaxEventSizeBytes != annals.DefaultMaxAppendSizeBytes {
		t.Fatalf("bad test: the append size limit is not a multiple of the event size limit")
	}
	data := make([]byte, annals.DefaultMaxEventSizeBytes-len("Big"))
	in := make([]annals.EventData, n)
	for i := range in {
		in[i] = ev("Big")
		in[i].Data = data
	}
	mustAppend(t, ctx, s, "max-append", annals.NoStream, in...)
	if got := mustReadStream(t, ctx, s, "max-append", annals.ReadStreamOptions{}); len(got) != n {
		t.Fatalf("append of the maximum size: read %d events, want %d", len(got), n)
	}
}

func testClosedStore(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "c-1", annals.NoStream, evs(3, "Before")...)
	if _, err := s.SetStreamMetadata(ctx, "c-1", annals.NoStream, annals.StreamMetadata{MaxCount: 10}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error { _, err := s.Append(ctx, "c-1", annals.Any, ev("After")); return err }},
		{"AppendNewStream", func() error { _, err := s.Append(ctx, "c-2", annals.NoStream, ev("After")); return err }},
		{"AppendZeroEvents", func() error { _, err := s.Append(ctx, "c-1", annals.Any); return err }},
		{"Delete", func() error { _, err := s.Delete(ctx, "c-1", annals.Any); return err }},
		{"Tombstone", func() error { _, err := s.Tombstone(ctx, "c-1", annals.Any); return err }},
		{"SetStreamMetadata", func() error {
			_, err := s.SetStreamMetadata(ctx, "c-1", annals.Any, annals.StreamMetadata{MaxCount: 1})
			return err
		}},
		{"StreamMetadata", func() error { _, _, err := s.StreamMetadata(ctx, "c-1"); return err }},
		{"ReadStream", func() error { _, err := readStream(ctx, s, "c-1", annals.ReadStreamOptions{}); return err }},
		{"ReadStreamMissing", func() error { _, err := readStream(ctx, s, "c-9", annals.ReadStreamOptions{}); return err }},
		{"ReadAll", func() error { _, err := collect(s.ReadAll(ctx, annals.ReadAllOptions{})); return err }},
		{"ReadAllBackwards", func() error {
			_, err := collect(s.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End}))
			return err
		}},
		{"ReadAllPastEnd", func() error { _, err := collect(s.ReadAll(ctx, annals.ReadAllOptions{From: 100})); return err }},
		{"SubscribeToAll", func() error { return subscriptionErr(s.SubscribeToAll(ctx, annals.SubscribeAllOptions{})) }},
		{"SubscribeToAllFromEnd", func() error {
			return subscriptionErr(s.SubscribeToAll(ctx, annals.SubscribeAllOptions{From: annals.End}))
		}},
		{"SubscribeToStream", func() error {
			return subscriptionErr(s.SubscribeToStream(ctx, "c-1", annals.SubscribeStreamOptions{}))
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, annals.ErrClosed) {
			t.Errorf("%s on a closed store: error %v, want ErrClosed", c.name, err)
		}
	}
}

// subscriptionErr runs a subscription on a closed store: it must deliver no
// event and end with an error.
func subscriptionErr(seq iter.Seq2[annals.Message, error]) error {
	for m, err := range seq {
		if err != nil {
			return err
		}
		if m.Kind == annals.MessageEvent {
			return errors.New("a subscription on a closed store delivered an event")
		}
	}
	return errors.New("subscription ended without an error")
}
